extern crate std;

use std::format;
use std::string::ToString;
use std::vec::Vec;

use super::*;

fn control_messages(chunks: &[&[u8]]) -> Vec<ControlMessage> {
    let mut reader = ControlReader::new();
    let mut messages = Vec::new();
    for chunk in chunks {
        reader.feed(chunk, &mut |message| messages.push(message));
    }
    messages
}

#[test]
fn control_messages_round_trip_as_lines() {
    let mut buffer = [0u8; CONTROL_MESSAGE_MAX];
    assert_eq!(ControlMessage::Signal(15).encode(&mut buffer), b"signal 15\n");
    let resize = ControlMessage::Resize { columns: 65535, rows: 65535 };
    assert_eq!(resize.encode(&mut buffer), b"resize 65535 65535\n");
    let mut stream = Vec::new();
    for message in [ControlMessage::Signal(2), resize, ControlMessage::Resize { columns: 80, rows: 24 }] {
        stream.extend_from_slice(message.encode(&mut buffer));
    }
    for split in 0..stream.len() {
        let messages = control_messages(&[&stream[..split], &stream[split..]]);
        assert_eq!(messages.len(), 3, "split at {split}");
        assert_eq!(messages[2], ControlMessage::Resize { columns: 80, rows: 24 });
    }
}

#[test]
fn a_restore_notice_travels_as_one_line() {
    let notice = RestoreNotice {
        realtime_ns: u64::MAX,
        entropy: core::array::from_fn(|index| (index * 37) as u8),
        instance_id: core::array::from_fn(|index| 0xf0 | index as u8),
    };
    let mut buffer = [0u8; CONTROL_MESSAGE_MAX];
    let line = ControlMessage::Restore(notice).encode(&mut buffer).to_vec();
    assert!(line.starts_with(b"restore 18446744073709551615 00254a6f"), "{line:?}");
    assert!(line.ends_with(b" f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\n"));
    assert!(line.len() <= CONTROL_MESSAGE_MAX);
    for split in [0, 1, 50, line.len() - 1] {
        assert_eq!(control_messages(&[&line[..split], &line[split..]]), [ControlMessage::Restore(notice)]);
    }
    // A digit too many or too few, or one that is not hexadecimal.
    let text = std::str::from_utf8(&line[..line.len() - 1]).unwrap();
    assert_eq!(ControlMessage::decode(text.as_bytes()), Some(ControlMessage::Restore(notice)));
    for bad in [format!("{text}0"), text[..text.len() - 1].to_string(), text.replace("f0f1", "g0f1")] {
        assert_eq!(ControlMessage::decode(bad.as_bytes()), None, "{bad}");
    }
    assert_eq!(ControlMessage::decode(format!("{text} extra").as_bytes()), None);
}

#[test]
fn malformed_control_lines_are_skipped() {
    let long = [b'x'; CONTROL_MESSAGE_MAX + 10];
    let messages =
        control_messages(&[b"signal\nsignal 300\nresize 1\nhello 1 2\nsignal 1 2\n", &long, b"\nsignal 9\n"]);
    assert_eq!(messages, [ControlMessage::Signal(9)]);
}

fn demultiplex(chunks: &[&[u8]]) -> Vec<(Stream, Vec<u8>)> {
    let mut demultiplexer = Demultiplexer::new();
    let mut pieces: Vec<(Stream, Vec<u8>)> = Vec::new();
    let mut output = |stream: Stream, bytes: &[u8]| {
        if bytes.is_empty() {
            return;
        }
        match pieces.last_mut() {
            Some((last, collected)) if *last == stream => collected.extend_from_slice(bytes),
            _ => pieces.push((stream, bytes.to_vec())),
        }
    };
    for chunk in chunks {
        demultiplexer.feed(chunk, &mut output);
    }
    demultiplexer.finish(&mut output);
    pieces
}

fn record(descriptor: u8, payload: &[u8]) -> Vec<u8> {
    let mut header = [0u8; OUTPUT_HEADER_MAX];
    let mut bytes = format_output_header(descriptor, payload.len(), &mut header).to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn output_records_come_apart_from_kernel_text_at_any_split() {
    let binary: Vec<u8> = (0..=255u8).chain(*b"\x1b_rosv-out=1;3\x1b\\").collect();
    let mut serial = b"kernel says\n".to_vec();
    serial.extend(record(1, b"hello\n"));
    serial.extend(record(2, &binary));
    serial.extend_from_slice(b"\x1b[1mbold\x1b_rosv-exit=3\x1b\\");
    let expected = [
        (Stream::Kernel, b"kernel says\n".to_vec()),
        (Stream::Application(1), b"hello\n".to_vec()),
        (Stream::Application(2), binary.clone()),
        (Stream::Kernel, b"\x1b[1mbold\x1b_rosv-exit=3\x1b\\".to_vec()),
    ];
    for split in 0..serial.len() {
        assert_eq!(demultiplex(&[&serial[..split], &serial[split..]]), expected, "split at {split}");
    }
    let bytewise: Vec<&[u8]> = serial.chunks(1).collect();
    assert_eq!(demultiplex(&bytewise), expected);
}

#[test]
fn header_lookalikes_stay_kernel_text() {
    for input in [
        &b"\x1b_rosv-out=3;1\x1b\\x"[..],
        b"\x1b_rosv-out=1;99999\x1b\\",
        b"\x1b_rosv-out=1;\x1b\\",
        b"\x1b_rosv-out=1x",
        b"\x1b_rosv-ou",
    ] {
        assert_eq!(demultiplex(&[input]), [(Stream::Kernel, input.to_vec())], "{input:?}");
    }
    // An empty record carries nothing.
    assert_eq!(demultiplex(&[b"a\x1b_rosv-out=1;0\x1b\\b"]), [(Stream::Kernel, b"ab".to_vec())]);
}

fn deframe(chunks: &[&[u8]]) -> (Vec<u8>, usize, Vec<ControlMessage>) {
    let mut deframer = InputDeframer::new();
    let (mut data, mut ends, mut controls) = (Vec::new(), 0, Vec::new());
    for chunk in chunks {
        deframer.feed(chunk, &mut |input| match input {
            Input::Data(bytes) => data.extend_from_slice(bytes),
            Input::End => ends += 1,
            Input::Control(message) => controls.push(message),
        });
    }
    (data, ends, controls)
}

#[test]
fn input_frames_carry_data_its_end_and_control_messages() {
    let binary: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let mut stream = Vec::new();
    stream.extend(input_frame_header(input_kind::DATA, binary.len() as u16));
    stream.extend(&binary);
    let mut buffer = [0u8; CONTROL_MESSAGE_MAX];
    let control = ControlMessage::Signal(2).encode(&mut buffer).to_vec();
    stream.extend(input_frame_header(input_kind::CONTROL, control.len() as u16));
    stream.extend(&control);
    stream.extend(input_frame_header(9, 2));
    stream.extend(b"??");
    stream.extend(input_frame_header(input_kind::END, 0));
    for split in [0, 1, 2, 3, 500, 1003, 1004, stream.len() - 1] {
        let (data, ends, controls) = deframe(&[&stream[..split], &stream[split..]]);
        assert_eq!(data, binary, "split at {split}");
        assert_eq!((ends, controls.as_slice()), (1, &[ControlMessage::Signal(2)][..]), "split at {split}");
    }
}
