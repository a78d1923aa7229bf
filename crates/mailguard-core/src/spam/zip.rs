//! zip: reads a ZIP archive's member list (the central directory, or the local headers when
//! the directory is missing) and, on request, one member's bytes. Bounded: a member count
//! cap and an inflate output cap; nothing is trusted from the archive.

/// Members listed per archive.
pub(super) const MAX_ENTRIES: usize = 256;
/// Bytes one member may inflate to when its content is inspected.
pub(super) const MAX_INFLATED: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub name: String,
    pub encrypted: bool,
    method: u16,
    compressed_size: usize,
    local_offset: usize,
}

fn u16le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(super) fn is_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

/// The archive's members, at most [`MAX_ENTRIES`]; `truncated` says more were present.
pub(super) fn entries(data: &[u8]) -> (Vec<Entry>, bool) {
    central_directory(data).unwrap_or_else(|| local_headers(data))
}

fn central_directory(data: &[u8]) -> Option<(Vec<Entry>, bool)> {
    // The end-of-central-directory record is within the last 22 + 65535 bytes.
    let tail_start = data.len().saturating_sub(22 + 65_535);
    let eocd = (tail_start..data.len().saturating_sub(21))
        .rev()
        .find(|&i| data[i..].starts_with(b"PK\x05\x06"))?;
    let total = usize::from(u16le(data, eocd + 10)?);
    let mut at = u32le(data, eocd + 16)? as usize;
    if at >= data.len() {
        return None; // ZIP64 or damaged: fall back to local headers
    }
    let mut out = Vec::new();
    for _ in 0..total.min(MAX_ENTRIES) {
        if u32le(data, at)? != 0x0201_4b50 {
            break;
        }
        let flags = u16le(data, at + 8)?;
        let method = u16le(data, at + 10)?;
        let csize = u32le(data, at + 20)? as usize;
        let nlen = usize::from(u16le(data, at + 28)?);
        let elen = usize::from(u16le(data, at + 30)?);
        let clen = usize::from(u16le(data, at + 32)?);
        let local = u32le(data, at + 42)? as usize;
        let name = data.get(at + 46..at + 46 + nlen)?;
        out.push(Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            encrypted: flags & 1 == 1,
            method,
            compressed_size: csize,
            local_offset: local,
        });
        at += 46 + nlen + elen + clen;
    }
    Some((out, total > MAX_ENTRIES))
}

fn local_headers(data: &[u8]) -> (Vec<Entry>, bool) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while out.len() < MAX_ENTRIES {
        if u32le(data, at) != Some(0x0403_4b50) {
            return (out, false);
        }
        let (Some(flags), Some(method), Some(csize), Some(nlen), Some(elen)) = (
            u16le(data, at + 6),
            u16le(data, at + 8),
            u32le(data, at + 18),
            u16le(data, at + 26),
            u16le(data, at + 28),
        ) else {
            return (out, false);
        };
        let Some(name) = data.get(at + 30..at + 30 + usize::from(nlen)) else {
            return (out, false);
        };
        out.push(Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            encrypted: flags & 1 == 1,
            method,
            compressed_size: csize as usize,
            local_offset: at,
        });
        if flags & 8 != 0 && csize == 0 {
            return (out, false); // sizes follow the data: cannot walk on
        }
        at = at + 30 + usize::from(nlen) + usize::from(elen) + csize as usize;
    }
    (out, u32le(data, at) == Some(0x0403_4b50))
}

/// The member's bytes (stored or deflated), at most [`MAX_INFLATED`] and at most `budget`,
/// which is reduced by what was produced; a partial result when the data is damaged or
/// larger than the cap.
pub(super) fn read(data: &[u8], e: &Entry, budget: &mut usize) -> Option<Vec<u8>> {
    let limit = MAX_INFLATED.min(*budget);
    if limit == 0 || e.encrypted || u32le(data, e.local_offset)? != 0x0403_4b50 {
        return None;
    }
    let out = read_limited(data, e, limit)?;
    *budget -= out.len().min(*budget);
    Some(out)
}

fn read_limited(data: &[u8], e: &Entry, limit: usize) -> Option<Vec<u8>> {
    let nlen = usize::from(u16le(data, e.local_offset + 26)?);
    let elen = usize::from(u16le(data, e.local_offset + 28)?);
    let start = e.local_offset + 30 + nlen + elen;
    let end = start.saturating_add(e.compressed_size).min(data.len());
    let body = data.get(start..end)?;
    match e.method {
        0 => Some(body[..body.len().min(limit)].to_vec()),
        8 => Some(
            match miniz_oxide::inflate::decompress_to_vec_with_limit(body, limit) {
                Ok(v) => v,
                Err(err) => err.output,
            },
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored (uncompressed) archive written by hand.
    pub(crate) fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, body) in members {
            let offset = out.len() as u32;
            out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
            out.extend_from_slice(&0u32.to_le_bytes()); // crc (not checked)
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(body);
            central
                .extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
            central.extend_from_slice(&0u32.to_le_bytes());
            central.extend_from_slice(&(body.len() as u32).to_le_bytes());
            central.extend_from_slice(&(body.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0u8; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn lists_and_reads_members() {
        let z = stored_zip(&[("a.txt", b"hello"), ("dir/run.exe", b"MZ")]);
        let (e, truncated) = entries(&z);
        assert!(!truncated);
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "dir/run.exe"]);
        let mut budget = 3;
        assert_eq!(read(&z, &e[0], &mut budget).as_deref(), Some(&b"hel"[..]));
        assert_eq!(budget, 0);
        assert_eq!(read(&z, &e[0], &mut budget), None);
        // Without the central directory the local headers still list the members.
        let cut = &z[..z.len() - 22];
        let cd = cut.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        assert_eq!(entries(&z[..cd]).0.len(), 2);
    }

    #[test]
    fn garbage_is_harmless() {
        assert!(entries(b"PK\x05\x06\xff\xff\xff\xff\xff\xff").0.is_empty());
        assert!(entries(b"PK\x03\x04").0.is_empty());
    }
}
