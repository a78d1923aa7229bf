//! attach: dangerous payloads: executables, scripts and macro documents, by name, by
//! declared type, by magic bytes, and inside ZIP archives (two levels deep, bounded).
//! Plain office files and XML (e-invoices, exports) are not dangerous and score nothing.

use super::{zip, Findings, Rule};

/// Bytes of an OLE2 document or VBA project searched for macro markers.
const MAX_MACRO_SCAN: usize = 4 * 1024 * 1024;
/// How deep archives inside archives are opened.
const MAX_ARCHIVE_DEPTH: usize = 2;

/// Programs and scripts Windows, macOS or a JVM will run on a double click
/// (Gmail's and Outlook's block lists, SpamAssassin's and rspamd's tables).
const EXECUTABLE: &[&str] = &[
    "exe",
    "bat",
    "cmd",
    "com",
    "pif",
    "scr",
    "cpl",
    "msi",
    "msp",
    "mst",
    "dll",
    "js",
    "jse",
    "vbs",
    "vbe",
    "vb",
    "wsf",
    "wsh",
    "wsc",
    "hta",
    "jar",
    "lnk",
    "reg",
    "ps1",
    "psm1",
    "psd1",
    "sct",
    "shb",
    "shs",
    "inf",
    "ins",
    "isp",
    "chm",
    "hlp",
    "msc",
    "gadget",
    "application",
    "appx",
    "appxbundle",
    "msix",
    "scf",
    "ade",
    "adp",
    "bas",
    "mde",
    "apk",
    "app",
    "iso",
    "img",
    "vhd",
    "vhdx",
    "xll",
    "settingcontent-ms",
    "library-ms",
    "diagcab",
    "msh",
    "mshxml",
];
/// Office formats whose only reason to exist is macros.
const MACRO: &[&str] = &[
    "docm", "dotm", "xlsm", "xltm", "xlam", "xlsb", "xlm", "pptm", "potm", "ppam", "ppsm", "sldm",
];
/// Archives a filter cannot see into here.
const OPAQUE_ARCHIVE: &[&str] = &["rar", "7z", "cab", "ace", "arj", "lzh", "xz", "bz2"];
/// Archives (and OOXML containers) that are opened and listed.
const ZIP_LIKE: &[&str] = &[
    "zip", "docx", "xlsx", "pptx", "docm", "xlsm", "pptm", "odt", "ods",
];
/// Executable MIME types.
const EXECUTABLE_TYPES: &[&str] = &[
    "application/x-msdownload",
    "application/x-msdos-program",
    "application/x-ms-dos-executable",
    "application/x-dosexec",
    "application/x-executable",
    "application/vnd.microsoft.portable-executable",
    "application/x-msi",
    "application/x-ms-installer",
    "application/java-archive",
    "application/x-java-archive",
    "application/hta",
    "application/x-ms-shortcut",
    "application/javascript",
    "application/x-javascript",
    "text/javascript",
    "application/x-vbscript",
    "text/vbscript",
    "application/x-bat",
    "application/x-sh",
    "application/x-shellscript",
];

/// Markers of code that runs when the document opens (SpamAssassin's OLEMACRO_MALICE).
const AUTO_EXEC: &[&[u8]] = &[
    b"autoopen",
    b"auto_open",
    b"document_open",
    b"workbook_open",
    b"autoexec",
    b"autoclose",
    b"document_close",
];

/// One attachment (any non-body part) as seen by [`inspect`].
pub(super) struct Part<'a> {
    pub name: Option<&'a str>,
    pub content_type: String,
    pub data: &'a [u8],
}

fn extension(name: &str) -> Option<&str> {
    let (_, ext) = name.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 20).then_some(ext)
}

/// Normalises a file name: lower case, no trailing dots or spaces, no invisible or
/// direction-changing characters. Also says whether such characters were there.
fn normalise_name(name: &str) -> (String, bool) {
    let mut tricks = false;
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}' => tricks = true,
            c => out.extend(c.to_lowercase()),
        }
    }
    let trimmed = out.trim_end_matches(['.', ' ']).to_string();
    // A path sneaked into the name counts by its last segment.
    let last = trimmed
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_string();
    (last, tricks)
}

/// Scores one attachment.
pub(super) fn inspect(part: &Part<'_>, f: &mut Findings) {
    let label = part.name.unwrap_or("(unnamed)");
    let label: String = label.chars().take(80).collect();
    let (name, tricks) = part.name.map(normalise_name).unwrap_or_default();
    let ext = extension(&name);
    if tricks {
        f.hit(
            Rule::DisguisedFilename,
            format!(
                "attachment name '{label}' hides characters that reverse or conceal its extension"
            ),
        );
    }
    if let Some(ext) = ext {
        if EXECUTABLE.contains(&ext) {
            f.hit(
                Rule::ExecutableAttachment,
                format!("attachment '{label}' is a program or script (.{ext})"),
            );
            let stem = &name[..name.len() - ext.len() - 1];
            if let Some(inner) = extension(stem) {
                if inner.len() <= 4 && inner.chars().all(|c| c.is_ascii_alphabetic()) {
                    f.hit(
                        Rule::DisguisedFilename,
                        format!("attachment '{label}' poses as .{inner} but is .{ext}"),
                    );
                }
            }
        }
        if MACRO.contains(&ext) {
            f.hit(
                Rule::MacroDocument,
                format!("attachment '{label}' is a macro-enabled Office document (.{ext})"),
            );
        }
        if OPAQUE_ARCHIVE.contains(&ext) {
            f.hit(
                Rule::OpaqueArchive,
                format!("attachment '{label}' is a .{ext} archive whose content cannot be checked"),
            );
        }
    }
    let ct = part.content_type.to_ascii_lowercase();
    if EXECUTABLE_TYPES.contains(&ct.as_str()) {
        f.hit(
            Rule::ExecutableAttachment,
            format!("attachment '{label}' is declared as {ct}"),
        );
    }
    sniff(part.data, &label, ext, f, 0);
}

/// Looks at the bytes themselves: magic numbers, OLE macros, ZIP members.
fn sniff(data: &[u8], label: &str, ext: Option<&str>, f: &mut Findings, depth: usize) {
    if let Some(kind) = executable_magic(data) {
        let rule = if depth == 0 {
            Rule::ExecutableAttachment
        } else {
            Rule::ExecutableInArchive
        };
        f.hit(rule, format!("'{label}' is {kind} by its content"));
        return;
    }
    if data.starts_with(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        macro_markers(data, label, f);
        return;
    }
    if data.starts_with(b"Rar!\x1a\x07")
        || data.starts_with(b"7z\xbc\xaf\x27\x1c")
        || data.starts_with(b"MSCF\0\0\0\0")
    {
        f.hit(
            Rule::OpaqueArchive,
            format!("'{label}' is a RAR, 7-Zip or CAB archive whose content cannot be checked"),
        );
        return;
    }
    if zip::is_zip(data) {
        archive(data, label, ext, f, depth);
    }
}

fn executable_magic(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"MZ") {
        // MZ alone is weak (rspamd #3481); require the PE header it points to.
        let pe = data
            .get(0x3c..0x40)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)?;
        if data.get(pe..pe.checked_add(4)?) == Some(b"PE\0\0") {
            return Some("a Windows program");
        }
        return None;
    }
    if data.starts_with(b"\x7fELF") {
        return Some("a Linux program");
    }
    if data.starts_with(b"\xfe\xed\xfa\xce")
        || data.starts_with(b"\xfe\xed\xfa\xcf")
        || data.starts_with(b"\xce\xfa\xed\xfe")
        || data.starts_with(b"\xcf\xfa\xed\xfe")
    {
        return Some("a macOS program");
    }
    if data.starts_with(b"L\0\0\0\x01\x14\x02\0\0\0\0\0\xc0\0\0\0\0\0\0\x46") {
        return Some("a Windows shortcut");
    }
    None
}

fn macro_markers(data: &[u8], label: &str, f: &mut Findings) {
    let scan = &data[..data.len().min(MAX_MACRO_SCAN)];
    // OLE directory names are UTF-16LE.
    const VBA: &[u8] = b"_\0V\0B\0A\0_\0P\0R\0O\0J\0E\0C\0T\0";
    let has_vba =
        find_ci(scan, VBA) || find_ci(scan, b"\0Attribut\0") || find_ci(scan, b"Attribute VB_");
    if has_vba {
        macro_found(scan, label, f);
    }
}

fn macro_found(scan: &[u8], label: &str, f: &mut Findings) {
    if AUTO_EXEC.iter().any(|m| find_ci(scan, m)) {
        f.add(
            Rule::MacroDocument,
            3.0 / 2.0,
            format!("'{label}' carries a macro that runs when the document is opened"),
        );
    } else {
        f.hit(Rule::MacroDocument, format!("'{label}' carries VBA macros"));
    }
}

fn archive(data: &[u8], label: &str, ext: Option<&str>, f: &mut Findings, depth: usize) {
    let (entries, truncated) = zip::entries(data);
    let is_ooxml = entries.iter().any(|e| e.name == "[Content_Types].xml");
    if truncated {
        f.hit(
            Rule::OpaqueArchive,
            format!(
                "'{label}' holds more than {} files; only the first were checked",
                zip::MAX_ENTRIES
            ),
        );
    }
    for e in &entries {
        let (member, tricks) = normalise_name(&e.name);
        let mext = extension(&member);
        let shown: String = e.name.chars().take(80).collect();
        if tricks {
            f.hit(
                Rule::DisguisedFilename,
                format!("'{label}' holds '{shown}', whose name hides its extension"),
            );
        }
        if e.encrypted && !is_ooxml {
            f.hit(
                Rule::EncryptedArchive,
                format!("'{label}' is password-protected, so its content cannot be checked"),
            );
        }
        if member == "vbaproject.bin" || member.ends_with(".bin") && member.contains("vba") {
            let body = zip::read(data, e, &mut f.inflate_budget).unwrap_or_default();
            let what = if ext.is_some_and(|x| MACRO.contains(&x)) {
                label.to_string()
            } else {
                format!("{label} (named like a macro-free document)")
            };
            macro_found(&body, &what, f);
            continue;
        }
        let Some(mext) = mext else { continue };
        if EXECUTABLE.contains(&mext) {
            f.hit(
                Rule::ExecutableInArchive,
                format!("'{label}' contains the program or script '{shown}'"),
            );
        } else if MACRO.contains(&mext) {
            f.hit(
                Rule::MacroDocument,
                format!("'{label}' contains the macro-enabled document '{shown}'"),
            );
        } else if (OPAQUE_ARCHIVE.contains(&mext) || mext == "zip") && !is_ooxml {
            f.hit(
                Rule::ArchiveInArchive,
                format!("'{label}' contains another archive, '{shown}'"),
            );
        }
        if depth + 1 < MAX_ARCHIVE_DEPTH && ZIP_LIKE.contains(&mext) {
            if let Some(inner) = zip::read(data, e, &mut f.inflate_budget) {
                sniff(
                    &inner,
                    &format!("{label}/{shown}"),
                    Some(mext),
                    f,
                    depth + 1,
                );
            }
        }
    }
}

fn find_ci(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, _)) = needle.split_first() else {
        return true;
    };
    let lf = first.to_ascii_lowercase();
    let uf = first.to_ascii_uppercase();
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&c| c == lf || c == uf)
        {
            Some(p) => {
                i += p;
                if hay[i..i + needle.len()].eq_ignore_ascii_case(needle) {
                    return true;
                }
                i += 1;
            }
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(name: Option<&str>, ct: &str, data: &[u8]) -> Vec<(Rule, f32)> {
        let mut f = Findings::default();
        inspect(
            &Part {
                name,
                content_type: ct.into(),
                data,
            },
            &mut f,
        );
        f.hits.iter().map(|h| (h.rule, h.points())).collect()
    }

    #[test]
    fn names_types_and_magic() {
        assert_eq!(
            rules(Some("Invoice.PDF.exe "), "application/octet-stream", b""),
            vec![
                (Rule::ExecutableAttachment, 6.0),
                (Rule::DisguisedFilename, 2.0)
            ]
        );
        assert!(rules(
            Some("export.xlsx"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            b""
        )
        .is_empty());
        assert!(rules(Some("invoice.xml"), "application/xml", b"<Invoice/>").is_empty());
        let mut pe = vec![0u8; 0x80];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c] = 0x40;
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        assert_eq!(
            rules(Some("photo.jpg"), "image/jpeg", &pe),
            vec![(Rule::ExecutableAttachment, 6.0)]
        );
        assert!(rules(Some("movie.mp4"), "video/mp4", b"MZ not a program").is_empty());
        assert!(find_ci(b"xxDocument_OPENyy", b"document_open"));
        assert!(!find_ci(b"docu", b"document_open"));
    }
}
