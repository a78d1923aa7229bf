//! Command-line arguments in the one style every subcommand uses: `--key value`,
//! `--key=value`, bare `--flag`, and plain words.

/// A walk over one subcommand's arguments.
pub struct Args<'a> {
    it: std::slice::Iter<'a, String>,
    inline: Option<String>,
    key: String,
}

/// One argument: an option (`--key`, with its inline `=value` kept for [`Args::value`])
/// or a plain word.
pub enum Arg<'a> {
    Opt(&'a str),
    Word(&'a str),
}

impl<'a> Args<'a> {
    pub fn new(args: &'a [String]) -> Self {
        Args {
            it: args.iter(),
            inline: None,
            key: String::new(),
        }
    }

    /// The next argument; an option's value is then read with [`Args::value`].
    pub fn next_arg(&mut self) -> Option<Arg<'a>> {
        let a = self.it.next()?;
        self.inline = None;
        if let Some(rest) = a.strip_prefix("--") {
            let (key, inline) = match rest.split_once('=') {
                Some((k, v)) => (&a[..k.len() + 2], Some(v.to_owned())),
                None => (a.as_str(), None),
            };
            self.inline = inline;
            self.key = key.to_owned();
            Some(Arg::Opt(key))
        } else {
            Some(Arg::Word(a))
        }
    }

    /// The next option or word as plain text (`--key` of `--key=value`).
    pub fn next_key(&mut self) -> Option<&'a str> {
        self.next_arg().map(|a| match a {
            Arg::Opt(k) | Arg::Word(k) => k,
        })
    }

    /// The value of the option just read: `--key=value` or the next argument.
    pub fn value(&mut self) -> Result<String, String> {
        if let Some(v) = self.inline.take() {
            return Ok(v);
        }
        self.it
            .next()
            .cloned()
            .ok_or_else(|| format!("{} needs a value", self.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_words_and_values() {
        let v: Vec<String> = ["--a", "1", "--b=2", "w", "--flag", "--c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut args = Args::new(&v);
        let mut seen = Vec::new();
        while let Some(a) = args.next_arg() {
            match a {
                Arg::Opt("--a") | Arg::Opt("--b") => seen.push(args.value().unwrap()),
                Arg::Opt("--flag") => seen.push("flag".into()),
                Arg::Opt(k) => seen.push(args.value().unwrap_err().replace(k, "K")),
                Arg::Word(w) => seen.push(w.to_owned()),
            }
        }
        assert_eq!(seen, ["1", "2", "w", "flag", "K needs a value"]);
    }
}
