//! Any bytes as the first frame of a connection: what the gateway's hello
//! step (src/gateway/hello.rs) does before it verifies the token: decode,
//! version negotiation and the device id check. None may panic.
#![no_main]

use chalktalk_protocol::{ClientMsg, SUPPORTED_VERSIONS, decode_client, negotiate, valid_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = decode_client(data) else {
        return;
    };
    if let ClientMsg::Hello { v, device, .. } = frame.m {
        if let Some(version) = negotiate(&v) {
            assert!(SUPPORTED_VERSIONS.contains(&version) && v.contains(&version));
        }
        if valid_id(&device) {
            assert!((1..=64).contains(&device.len()));
        }
    }
});
