//! Any bytes as a server frame, as a client (the Rust client, the bench)
//! decodes them: no panic, and accepted frames round-trip byte for byte.
#![no_main]

use chalktalk_protocol::{decode_server, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode_server(data) {
        let bytes = encode(&frame);
        let again = decode_server(&bytes).expect("an encoded frame decodes");
        assert_eq!(encode(&again), bytes, "round trip changed the frame");
    }
});
