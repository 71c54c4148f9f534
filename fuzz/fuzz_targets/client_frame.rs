//! Any bytes as a client WebSocket frame: `decode_client` must answer Ok
//! or a documented error (never panic, hang or allocate past the limits
//! scripts/fuzz.sh sets), and whatever it accepts must encode and decode
//! back to the same bytes.
#![no_main]

use chalktalk_protocol::{ErrorCode, decode_client, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode_client(data) {
        Ok(frame) => {
            let bytes = encode(&frame);
            let again = decode_client(&bytes).expect("an encoded frame decodes");
            assert_eq!(encode(&again), bytes, "round trip changed the frame");
        }
        Err(e) => {
            assert!(matches!(
                e.code,
                ErrorCode::BadFrame | ErrorCode::UnknownType | ErrorCode::Invalid
            ));
            assert!(!e.message.is_empty());
        }
    }
});
