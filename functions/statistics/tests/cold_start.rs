//! A cold start without its configuration fails at once, naming the missing or bad variable.

fn run(vars: &[(&str, &str)]) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_statistics"));
    cmd.env_clear();
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the binary");
    assert!(!out.status.success());
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn missing_or_bad_configuration_fails_init_naming_the_variable() {
    assert!(run(&[]).contains("TDS_INBOX_QUEUE_URL"));
    // The comparator dead-letters nothing: the dead-letter queue is not its configuration.
    let without_dlq = run(&[("TDS_INBOX_QUEUE_URL", "i")]);
    assert!(without_dlq.contains("TDS_EVENT_BUS_NAME"), "{without_dlq}");
    assert!(!without_dlq.contains("TDS_DLQ_URL"), "{without_dlq}");
    let base = [("TDS_INBOX_QUEUE_URL", "i"), ("TDS_EVENT_BUS_NAME", "tds")];
    assert!(run(&base).contains("TDS_ZOHO_SECRET_ARN"));
    let bad_dc = run(&[
        base[0],
        base[1],
        ("TDS_ZOHO_SECRET_ARN", "s"),
        ("TDS_ZOHO_DC", "mars"),
    ]);
    assert!(
        bad_dc.contains("TDS_ZOHO_DC") && bad_dc.contains("mars"),
        "{bad_dc}"
    );
}
