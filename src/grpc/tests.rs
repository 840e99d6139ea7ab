use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn request_encoding() {
    assert_eq!(encode_request(""), Vec::<u8>::new());
    assert_eq!(encode_request("db"), vec![0x0a, 2, b'd', b'b']);
    let long = "s".repeat(200);
    let bytes = encode_request(&long);
    assert_eq!(&bytes[..3], &[0x0a, 0xc8, 0x01]);
    assert_eq!(decode_request(&bytes), Ok(long));
}

#[test]
fn response_decoding() {
    assert_eq!(decode_response(&[]), Ok(None));
    assert_eq!(decode_response(&[0x08, 1]), Ok(Some(1)));
    assert_eq!(decode_response(&[0x08, 2]), Ok(Some(2)));
    // Unknown fields are skipped, the last status wins.
    assert_eq!(
        decode_response(&[0x12, 1, b'x', 0x08, 3, 0x08, 1, 0x1d, 0, 0, 0, 0]),
        Ok(Some(1))
    );
    assert_eq!(decode_response(&[0x08]), Err("truncated varint"));
    assert_eq!(
        decode_response(&[0x0a, 1, 1]),
        Err("status is not a varint")
    );
    assert_eq!(decode_response(&[0x12, 9, 1]), Err("truncated field"));
    assert_eq!(decode_response(&[0x0b]), Err("unsupported wire type"));
    assert_eq!(decode_response(b"HTTP/1.1"), Err("unsupported wire type"));
    assert_eq!(
        decode_response(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1]),
        Err("varint too long")
    );
}

#[test]
fn request_decoding() {
    assert_eq!(decode_request(&[]), Ok(String::new()));
    assert_eq!(
        decode_request(&[0x0a, 5, b'r', b'e', b'a', b'd', b'y']),
        Ok("ready".into())
    );
    assert_eq!(
        decode_request(&[0x0a, 1, 0xff]),
        Err("service is not UTF-8")
    );
    assert_eq!(decode_request(&[0x08, 1]), Err("service is not a string"));
}

#[test]
fn frames() {
    assert_eq!(frame(&[]), Frame::Incomplete);
    assert_eq!(frame(&[0, 0, 0]), Frame::Incomplete);
    assert_eq!(frame(&[0, 0, 0, 0, 0]), Frame::Message(&[]));
    assert_eq!(frame(&[0, 0, 0, 0, 2, 0x0a]), Frame::Incomplete);
    assert_eq!(
        frame(&[0, 0, 0, 0, 2, 0x0a, 0, 9, 9]),
        Frame::Message(&[0x0a, 0])
    );
    assert!(matches!(frame(&[1, 0, 0, 0, 0]), Frame::Invalid(_)));
    assert!(matches!(frame(&[0, 0, 1, 0, 0]), Frame::Invalid(_)));
}

#[test]
fn grpc_service_proto() {
    let s = service_config("outbound|50051||db.svc", "db.svc:50051").unwrap_or_default();
    let b = s.as_bytes();
    assert_eq!(b[0], 0x0a);
    assert_eq!(usize::from(b[1]), b.len() - 2);
    assert_eq!(&b[2..4], &[0x0a, 22]);
    assert!(s.ends_with("\u{12}\u{c}db.svc:50051"));
    assert_eq!(service_config(&"c".repeat(100), &"a".repeat(24)), None);
    assert!(service_config(&"c".repeat(100), &"a".repeat(23)).is_some());
    assert_eq!(service_config("h1", ""), Some("\n\u{4}\n\u{2}h1".into()));
}

#[test]
fn names() {
    assert_eq!(code_name(0), "OK");
    assert_eq!(code_name(14), "UNAVAILABLE");
    assert_eq!(code_name(16), "UNAUTHENTICATED");
    assert_eq!(code_name(17), "UNRECOGNIZED");
    assert_eq!(serving_name(2), "NOT_SERVING");
    assert_eq!(serving_name(9), "UNRECOGNIZED");
}
