//! The sender's unit tests: the message it builds and files mode here; against a real SMTP
//! server on loopback (Python's `aiosmtpd` from `ironmesh_test_support::smtp`; required in CI,
//! skipped with a note elsewhere) in [`smtp`]; the relay URL rules and the quiet errors in
//! [`relay`].

mod relay;
mod smtp;

use super::*;

fn smtp_mailer(url: &str) -> Mailer {
    Mailer::new(MailerConfig {
        smtp_url: Some(url.to_owned()),
        from: "Ironmesh <notifications@ironmesh.local>".to_owned(),
        timeout: Duration::from_secs(10),
        files_dir: PathBuf::from("/nonexistent"),
    })
    .unwrap()
}

fn email(id: &str, to: &str) -> Email {
    Email {
        message_id: format!("<{id}@ironmesh>"),
        to: to.to_owned(),
        to_name: "Ada Lovelace".to_owned(),
        subject: "Grüße: your order <shipped> & more".to_owned(),
        text: "Hello Ada,\n\nYour order <script>alert(1)</script> shipped.\nTrack it & relax.\n"
            .to_owned(),
    }
}

/// Files mode: sending the same email twice (a retry) leaves exactly one `.eml`, named after the
/// Message-ID, in a directory created on demand; the headers are exactly the expected ones.
#[tokio::test]
async fn files_mode_keeps_one_eml_per_message_id_across_retries() {
    let dir = tempfile::tempdir().unwrap();
    let files_dir = dir.path().join("outbox-mail");
    let mailer = Mailer::new(MailerConfig {
        smtp_url: None,
        from: "Ironmesh <notifications@ironmesh.local>".to_owned(),
        timeout: Duration::from_secs(5),
        files_dir: files_dir.clone(),
    })
    .unwrap();
    assert_eq!(mailer.relay(), "files");

    let sent = email("0190a1b2-files", "ada@example.com");
    mailer.send(&sent).await.unwrap();
    mailer.send(&sent).await.unwrap();

    let names: Vec<String> = std::fs::read_dir(&files_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["0190a1b2-files@ironmesh.eml"]);
    let eml = std::fs::read_to_string(files_dir.join(&names[0])).unwrap();
    assert_eq!(
        eml.matches("Message-ID: <0190a1b2-files@ironmesh>\r\n")
            .count(),
        1,
        "{eml}"
    );
    let (head, _) = eml.split_once("\r\n\r\n").unwrap();
    let mut headers: Vec<&str> = head
        .split("\r\n")
        .filter(|line| !line.starts_with([' ', '\t']))
        .map(|line| line.split_once(':').unwrap().0)
        .collect();
    headers.sort_unstable();
    assert_eq!(
        headers,
        [
            "Content-Type",
            "Date",
            "From",
            "MIME-Version",
            "Message-ID",
            "Subject",
            "To"
        ]
    );
    assert!(eml.contains("Content-Type: multipart/alternative"));

    // Another email is another file.
    mailer
        .send(&email("0190a1b2-other", "ada@example.com"))
        .await
        .unwrap();
    assert_eq!(std::fs::read_dir(&files_dir).unwrap().count(), 2);
}

/// A broken `from`, recipient or Message-ID is refused before anything is sent: a bad
/// configuration at start, a bad email as a final failure.
#[tokio::test]
async fn bad_addresses_and_message_ids_are_refused() {
    let bad_from = Mailer::new(MailerConfig {
        smtp_url: None,
        from: "not an address".to_owned(),
        timeout: Duration::from_secs(5),
        files_dir: PathBuf::new(),
    });
    assert!(matches!(bad_from, Err(MailerError::Config(_))));

    let dir = tempfile::tempdir().unwrap();
    let mailer = Mailer::new(MailerConfig {
        smtp_url: None,
        from: "notifications@ironmesh.local".to_owned(),
        timeout: Duration::from_secs(5),
        files_dir: dir.path().to_owned(),
    })
    .unwrap();
    let failure = mailer
        .send(&email("0190a1b2-bad", "not-an-address"))
        .await
        .unwrap_err();
    assert_eq!(failure.reason, "the recipient address is invalid");
    assert!(!failure.retryable);
    let mut bad_id = email("x", "ada@example.com");
    bad_id.message_id = "<a b@ironmesh>".to_owned();
    assert!(!mailer.send(&bad_id).await.unwrap_err().retryable);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn message_ids_are_kept_as_given_or_formed_from_a_bare_id() {
    assert_eq!(
        message_id("<0190-1@ironmesh>").as_deref(),
        Some("<0190-1@ironmesh>")
    );
    assert_eq!(message_id("0190-1").as_deref(), Some("<0190-1@ironmesh>"));
    for bad in [
        "",
        "<>",
        "<a>",
        "<a@>",
        "<@b>",
        "<a@b@c>",
        "<a b@c>",
        "<a@b",
        "a@b",
        "a\r\nBcc: x",
        "<a@b>\r\n",
    ] {
        assert_eq!(message_id(bad), None, "{bad:?}");
    }
}

#[test]
fn file_names_are_plain_and_never_hidden() {
    assert_eq!(file_name("<0190-1@ironmesh>"), "0190-1@ironmesh.eml");
    assert_eq!(file_name("<../x/y@ironmesh>"), "_._x_y@ironmesh.eml");
    assert_eq!(file_name(&format!("<{}@x>", "a".repeat(300))).len(), 204);
}

#[test]
fn html_escapes_and_placeholders_are_expanded_once() {
    assert_eq!(
        escape(r#"<a href="x">&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(
        paragraphs("one\r\ntwo\n\n  \n\nthree\n"),
        "<p style=\"margin:0 0 16px 0;\">one<br>\ntwo</p>\n<p style=\"margin:0 0 16px 0;\">three</p>\n"
    );
    assert_eq!(TEMPLATE.matches("{{body}}").count(), 1);
    assert_eq!(TEMPLATE.matches("{{subject}}").count(), 2);
    let page = html("{{body}}", "{{subject}}");
    assert_eq!(
        page.matches("{{body}}").count(),
        2,
        "the subject, twice, unexpanded"
    );
    assert_eq!(
        page.matches("{{subject}}").count(),
        1,
        "the body, unexpanded"
    );
    assert_eq!(one_line("  a\r\nBcc: x\t"), "a  Bcc: x");
}
