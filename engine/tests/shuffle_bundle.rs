//! Shuffle bundles as the sender builds them: a batch encoded in place into a bundle (behind
//! the transport's header room) is exactly a separately encoded frame, length-prefixed; a
//! failed host encoding leaves the bundle as it was; and a bus frame message's header,
//! written in place before a bundle, is the message `Message::Frame` encodes.

use engine::batch::{BatchData, ForeignColumn};
use engine::shuffle::{
    bundle_data, bundle_done, bundle_push, decode_frame, encode_data, encode_done, unbundle, Frame,
};
use engine::wire::bus::{
    read_frame_header, write_frame_header, FrameHeader, Message, FRAME_HEADER_LEN,
};
use engine::{Batch, Datum};

/// A host column whose serialiser writes part of its blob, then fails.
#[derive(Debug)]
struct Broken;

impl ForeignColumn for Broken {
    fn len(&self) -> usize {
        1
    }
    fn slice(self: Box<Self>, _: usize, _: usize) -> Box<dyn ForeignColumn> {
        self
    }
    fn partition(self: Box<Self>, _dest: &[usize], _n: usize) -> Vec<Box<dyn ForeignColumn>> {
        unimplemented!()
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
    fn encode(
        &self,
        out: &mut Vec<u8>,
        _errors: &mut Vec<String>,
    ) -> std::result::Result<(), String> {
        out.extend_from_slice(b"half a blob");
        Err("cannot serialise".into())
    }
}

#[test]
fn bundling_in_place_is_framing_a_separate_encoding() {
    let mut b = Batch::datums(vec![Datum::Int(3), Datum::Str("x".into())]);
    b.errors.push("e".into());
    let mut frame = Vec::new();
    encode_data(&b, &mut frame).unwrap();
    let mut expected = b"room".to_vec();
    bundle_push(&mut expected, &frame);
    let mut done = Vec::new();
    encode_done(&mut done);
    bundle_push(&mut expected, &done);
    let mut bundle = b"room".to_vec();
    bundle_data(&mut bundle, &b).unwrap();
    bundle_done(&mut bundle);
    assert_eq!(bundle, expected);
    let frames = unbundle(&bundle[4..]).unwrap();
    assert!(matches!(decode_frame(frames[0]), Ok(Frame::Data(_))));
    assert!(matches!(decode_frame(frames[1]), Ok(Frame::Done)));
}

#[test]
fn a_failed_host_encoding_leaves_the_bundle_as_it_was() {
    let mut bundle = b"room".to_vec();
    bundle_data(&mut bundle, &Batch::datums(vec![Datum::Int(1)])).unwrap();
    let before = bundle.clone();
    let mut b = Batch::errors_only(Vec::new());
    b.data = BatchData::Foreign(Box::new(Broken));
    assert!(bundle_data(&mut bundle, &b).is_err());
    assert_eq!(bundle, before);
}

#[test]
fn a_frame_header_written_in_place_is_the_encoded_message() {
    let h = FrameHeader {
        exec: 0x0102_0304_0506_0708,
        step: 9,
        from: 2,
    };
    let bundle = b"frames...".to_vec();
    let mut buf = vec![0xEE; FRAME_HEADER_LEN];
    buf.extend_from_slice(&bundle);
    assert!(write_frame_header(&mut buf, h));
    let m = Message::Frame {
        exec: h.exec,
        step: h.step,
        from: h.from,
        frame: bundle.clone(),
    };
    assert_eq!(buf, m.encode());
    assert_eq!(read_frame_header(&buf), Some(h));
    assert_eq!(&buf[FRAME_HEADER_LEN..], &bundle[..]);
    // An empty bundle is a message too; a buffer without header room is refused.
    let mut empty = vec![0; FRAME_HEADER_LEN];
    assert!(write_frame_header(&mut empty, h));
    assert_eq!(read_frame_header(&empty), Some(h));
    assert!(!write_frame_header(&mut [0; FRAME_HEADER_LEN - 1], h));
}

#[test]
fn a_frame_header_is_read_only_from_a_whole_frame_message() {
    let h = FrameHeader {
        exec: 1,
        step: 2,
        from: 3,
    };
    let mut buf = vec![0; FRAME_HEADER_LEN + 5];
    assert!(write_frame_header(&mut buf, h));
    for cut in 0..buf.len() {
        assert_eq!(read_frame_header(&buf[..cut]), None, "cut at {cut}");
    }
    let mut longer = buf.clone();
    longer.push(0);
    assert_eq!(read_frame_header(&longer), None);
    let other = Message::Done { id: "x".into() }.encode();
    assert_eq!(read_frame_header(&other), None);
    let credit = Message::Credit {
        exec: 1,
        step: 2,
        from: 3,
        n: 1,
    }
    .encode();
    assert_eq!(read_frame_header(&credit), None);
}
