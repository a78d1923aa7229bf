//! Where a message came from: which PHP frames belong to known mail libraries,
//! so the operator sees the script that asked for the mail, not PHPMailer.

/// Path fragments of the mail libraries PHP sites use (lower-case, `/` separators).
const MAIL_LIBRARIES: &[&str] = &[
    "/phpmailer/",
    "class.phpmailer.php",
    "class-phpmailer.php",
    "/wp-includes/pluggable.php",
    "/symfony/mailer/",
    "/symfony/mime/",
    "/swiftmailer/",
    "/laminas-mail/",
    "/laminas/mail/",
    "/zend-mail/",
    "/illuminate/mail/",
    "/laravel/framework/src/illuminate/mail/",
    "/nette/mail/",
    "/drupal/core/lib/drupal/core/mail/",
    "/core/lib/drupal/core/mail/",
];

/// Whether a PHP file belongs to a known mail library.
pub fn is_mail_library(file: &str) -> bool {
    let f = file.replace('\\', "/").to_ascii_lowercase();
    MAIL_LIBRARIES.iter().any(|lib| f.contains(lib))
}

/// The index of the first frame (innermost first) outside the mail libraries.
pub fn first_caller<'a>(files: impl IntoIterator<Item = &'a str>) -> Option<usize> {
    files.into_iter().position(|f| !is_mail_library(f))
}

/// Whether the file name is PHP's name for code run through `eval()`
/// (`/path/x.php(12) : eval()'d code`) or `create_function()`.
pub fn is_eval(file: &str) -> bool {
    file.contains("eval()'d code") || file.contains("runtime-created function")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_are_skipped() {
        let frames = [
            "/var/www/wp/wp-includes/PHPMailer/PHPMailer.php",
            "/var/www/wp/wp-includes/pluggable.php",
            "/var/www/wp/wp-content/plugins/contact-form-7/includes/mail.php",
        ];
        assert_eq!(first_caller(frames), Some(2));
        assert_eq!(
            first_caller(["/app/vendor/symfony/mailer/Transport.php"]),
            None
        );
        assert!(!is_mail_library("/var/www/html/contact.php"));
        assert!(is_eval("/var/www/html/x.php(3) : eval()'d code"));
        assert!(!is_eval("/var/www/html/x.php"));
    }
}
