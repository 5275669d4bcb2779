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
    assert!(run(&[("TDS_INBOX_QUEUE_URL", "i")]).contains("TDS_DLQ_URL"));
    let base = [("TDS_INBOX_QUEUE_URL", "i"), ("TDS_DLQ_URL", "q")];
    assert!(run(&base).contains("TDS_EVENT_BUS_NAME"));
    assert!(run(&[base[0], base[1], ("TDS_EVENT_BUS_NAME", "tds")]).contains("TDS_ZOHO_SECRET_ARN"));
    let bad_dc = run(&[
        base[0],
        base[1],
        ("TDS_EVENT_BUS_NAME", "tds"),
        ("TDS_ZOHO_SECRET_ARN", "s"),
        ("TDS_ZOHO_DC", "mars"),
    ]);
    assert!(
        bad_dc.contains("TDS_ZOHO_DC") && bad_dc.contains("mars"),
        "{bad_dc}"
    );
}
