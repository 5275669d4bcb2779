//! A cold start without its configuration fails at once, naming the missing variable.

#[test]
fn missing_configuration_fails_init_naming_the_variable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_webhook-ingest"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("TDS_INBOX_QUEUE_URL"), "{text}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_webhook-ingest"))
        .env_clear()
        .env("TDS_INBOX_QUEUE_URL", "http://127.0.0.1:9/queue/tds-inbox")
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("TDS_WEBHOOK_SECRET_ARN"), "{text}");
}
