//! A cold start without its configuration fails at once, naming the missing or bad variable.

fn run(vars: &[(&str, &str)]) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_admin-api"));
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
    let all = [
        ("TDS_INBOX_QUEUE_URL", "i"),
        ("TDS_DLQ_URL", "q"),
        ("TDS_EVENT_BUS_NAME", "tds"),
        ("TDS_ZOHO_SECRET_ARN", "s"),
    ];
    for n in 0..all.len() {
        let out = run(&all[..n]);
        assert!(out.contains(all[n].0), "{n}: {out}");
    }
    let mut bad = all.to_vec();
    bad.push(("TDS_LOW_STOCK_THRESHOLD", "few"));
    let out = run(&bad);
    assert!(out.contains("TDS_LOW_STOCK_THRESHOLD"), "{out}");
}
