//! A cold start without its configuration fails at once, naming the missing or bad variable.

fn run(vars: &[(&str, &str)]) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stock-poller"));
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
    assert!(run(&[]).contains("TDS_EVENT_BUS_NAME"));
    assert!(run(&[("TDS_EVENT_BUS_NAME", "tds")]).contains("TDS_ZOHO_SECRET_ARN"));
    let base = [("TDS_EVENT_BUS_NAME", "tds"), ("TDS_ZOHO_SECRET_ARN", "s")];
    let bad_dc = run(&[base[0], base[1], ("TDS_ZOHO_DC", "mars")]);
    assert!(
        bad_dc.contains("TDS_ZOHO_DC") && bad_dc.contains("mars"),
        "{bad_dc}"
    );
    let bad_threshold = run(&[base[0], base[1], ("TDS_LOW_STOCK_THRESHOLD", "few")]);
    assert!(
        bad_threshold.contains("TDS_LOW_STOCK_THRESHOLD"),
        "{bad_threshold}"
    );
}
