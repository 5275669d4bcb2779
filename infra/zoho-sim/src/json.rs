//! JSON output as Zoho writes it: floating-point numbers with six decimals (`5.000000`), integers as
//! integers, everything else as usual.

use serde_json::Value;

/// Serialises `v` the way Zoho's API does.
pub fn to_zoho_json(v: &Value) -> String {
    let mut out = String::with_capacity(256);
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.is_finite() => out.push_str(&format!("{f:.6}")),
            _ => out.push_str(&n.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write(item, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_have_six_decimals() {
        let v = json!({"rate": 5.0, "qty": 3, "s": "5.000000", "a": [1.5, "x"], "n": null});
        assert_eq!(
            to_zoho_json(&v),
            r#"{"a":[1.500000,"x"],"n":null,"qty":3,"rate":5.000000,"s":"5.000000"}"#
        );
    }
}
