//! Checks protocol/vectors.json against this build: every example frame must
//! encode to exactly the recorded bytes and decode back to the same value.
//! `CHALKTALK_WRITE_VECTORS=1 cargo test -p chalktalk-protocol --test vectors`
//! rewrites the file after a deliberate protocol change.

use chalktalk_protocol::{
    codec::{decode_client, decode_server, encode},
    vectors::{client_vectors, server_vectors},
};
use serde_json::{Value, json};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn current() -> Value {
    let mut out = Vec::new();
    for (name, f) in client_vectors() {
        out.push(json!({"name": name, "direction": "client_to_server",
            "hex": hex(&encode(&f)), "meaning": serde_json::to_value(&f).unwrap()}));
    }
    for (name, f) in server_vectors() {
        out.push(json!({"name": name, "direction": "server_to_client",
            "hex": hex(&encode(&f)), "meaning": serde_json::to_value(&f).unwrap()}));
    }
    Value::Array(out)
}

#[test]
fn vectors_match_this_build() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors.json");
    let now = current();
    if std::env::var_os("CHALKTALK_WRITE_VECTORS").is_some() {
        std::fs::write(path, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
    }
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors.json")).unwrap();
    assert_eq!(
        recorded, now,
        "encoding changed: bump the protocol version or rewrite vectors"
    );
    for v in recorded.as_array().unwrap() {
        let bytes = unhex(v["hex"].as_str().unwrap());
        if v["direction"] == "client_to_server" {
            let f = decode_client(&bytes).expect("client vector decodes");
            assert_eq!(hex(&encode(&f)), v["hex"]);
        } else {
            let f = decode_server(&bytes).expect("server vector decodes");
            assert_eq!(hex(&encode(&f)), v["hex"]);
        }
    }
}
