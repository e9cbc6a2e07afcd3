use alloc::vec::Vec;

use super::*;

const CLIENT: &str = "10.0.2.15:40000";
const SERVER: &str = "93.184.216.34:80";
const CLIENT_ISN: u32 = 0xffff_fff0;
const SERVER_ISN: u32 = 1000;

fn address(text: &str) -> SocketAddr {
    text.parse().expect("an address")
}

/// An Ethernet frame holding an IPv4 TCP segment.
fn frame(
    from: &str,
    to: &str,
    sequence: u32,
    acknowledgement: u32,
    flags: u8,
    options: &[u8],
    payload: usize,
) -> Vec<u8> {
    let (SocketAddr::V4(from), SocketAddr::V4(to)) = (address(from), address(to)) else { panic!("IPv4") };
    let tcp_length = 20 + options.len() + payload;
    let mut frame = alloc::vec![0u8; 12];
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&((20 + tcp_length) as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    frame.extend_from_slice(&from.ip().octets());
    frame.extend_from_slice(&to.ip().octets());
    frame.extend_from_slice(&from.port().to_be_bytes());
    frame.extend_from_slice(&to.port().to_be_bytes());
    frame.extend_from_slice(&sequence.to_be_bytes());
    frame.extend_from_slice(&acknowledgement.to_be_bytes());
    frame.push((((20 + options.len()) / 4) as u8) << 4);
    frame.push(flags);
    frame.extend_from_slice(&1000u16.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(options);
    frame.resize(frame.len() + payload, 0xaa);
    frame
}

/// SYN options: MSS 1460, window scale 7, SACK permitted.
const SYN_OPTIONS: [u8; 12] = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1];

fn at(milliseconds: i64) -> Instant {
    Instant::from_millis(milliseconds)
}

/// A ledger after the client's handshake with the server, 10 ms each way.
fn connected() -> Ledger {
    let mut ledger = Ledger::default();
    ledger.note(&frame(CLIENT, SERVER, CLIENT_ISN, 0, SYN, &SYN_OPTIONS, 0), Direction::Out, at(0));
    ledger.note(
        &frame(
            SERVER,
            CLIENT,
            SERVER_ISN,
            CLIENT_ISN.wrapping_add(1),
            SYN | ACK,
            &[2, 4, 0x02, 0x18, 1, 3, 3, 2],
            0,
        ),
        Direction::In,
        at(20),
    );
    ledger.note(
        &frame(CLIENT, SERVER, CLIENT_ISN.wrapping_add(1), SERVER_ISN + 1, ACK, &[], 0),
        Direction::Out,
        at(20),
    );
    ledger
}

fn client_figures(ledger: &Ledger) -> Figures {
    *ledger.figures(address(CLIENT), address(SERVER)).expect("the connection is followed")
}

#[test]
fn the_handshake_gives_the_options_sizes_and_a_round_trip() {
    let ledger = connected();
    let figures = client_figures(&ledger);
    assert_eq!((figures.segments_out, figures.segments_in), (2, 1));
    assert_eq!(figures.peer_mss(), Some(536));
    assert_eq!(figures.own_mss(), Some(1460));
    // Window scaling both ways; SACK offered by one side only.
    assert_eq!(figures.options(), INFO_WINDOW_SCALE);
    assert_eq!(figures.window_scales(), (2, 7));
    assert_eq!(figures.smoothed_rtt_us, Some(20_000));
    assert_eq!(figures.rtt_variation_us, 10_000);
    assert!(figures.is_active_opener);
    // The SYN counts among the bytes the connecting side had acknowledged.
    assert_eq!((figures.bytes_acknowledged(), figures.bytes_received()), (1, 0));
}

#[test]
fn data_and_acknowledgements_across_the_sequence_wrap_are_counted() {
    let mut ledger = connected();
    let first = CLIENT_ISN.wrapping_add(1);
    ledger.note(&frame(CLIENT, SERVER, first, SERVER_ISN + 1, ACK, &[], 500), Direction::Out, at(30));
    ledger.note(
        &frame(CLIENT, SERVER, first.wrapping_add(500), SERVER_ISN + 1, ACK, &[], 500),
        Direction::Out,
        at(31),
    );
    let figures = client_figures(&ledger);
    assert_eq!(figures.bytes_in_flight(), 1000);
    // The answer acknowledges both and carries 300 bytes.
    ledger.note(
        &frame(SERVER, CLIENT, SERVER_ISN + 1, first.wrapping_add(1000), ACK, &[], 300),
        Direction::In,
        at(40),
    );
    let figures = client_figures(&ledger);
    assert_eq!((figures.data_segments_out, figures.data_segments_in), (2, 1));
    assert_eq!(
        (figures.bytes_sent, figures.bytes_acknowledged(), figures.bytes_received()),
        (1000, 1001, 300)
    );
    assert_eq!(figures.bytes_in_flight(), 0);
    assert_eq!(figures.largest_received, 300);
    // The first data segment was timed: 10 ms.
    assert_eq!(figures.min_rtt_us, Some(10_000));
    // The window the peer advertises is scaled by its shift.
    assert_eq!(figures.peer_window, 1000 << 2);
    // Slow start grew the window by what each acknowledgement took, up to
    // a segment: the SYN's one, then a segment for the data.
    assert_eq!(figures.congestion_window, 2 * RENO_INITIAL_MSS + 1 + 536);
}

#[test]
fn a_retransmission_is_counted_and_not_timed() {
    let mut ledger = connected();
    let first = CLIENT_ISN.wrapping_add(1);
    ledger.note(&frame(CLIENT, SERVER, first, SERVER_ISN + 1, ACK, &[], 400), Direction::Out, at(30));
    ledger.note(&frame(CLIENT, SERVER, first, SERVER_ISN + 1, ACK, &[], 400), Direction::Out, at(1030));
    let figures = client_figures(&ledger);
    assert_eq!(
        (figures.retransmissions, figures.recent_retransmissions, figures.bytes_retransmitted),
        (1, 1, 400)
    );
    assert_eq!(figures.bytes_sent, 800);
    // The timer's retransmission: one segment of window.
    assert_eq!(figures.congestion_window, 536);
    ledger.note(
        &frame(SERVER, CLIENT, SERVER_ISN + 1, first.wrapping_add(400), ACK, &[], 0),
        Direction::In,
        at(1040),
    );
    let figures = client_figures(&ledger);
    assert_eq!(figures.recent_retransmissions, 0);
    // Karn's rule: the round trip is still the handshake's.
    assert_eq!(figures.smoothed_rtt_us, Some(20_000));
}

#[test]
fn both_ends_over_the_loop_have_their_own_figures() {
    let mut ledger = Ledger::default();
    let (one, two) = ("127.0.0.1:5000", "127.0.0.1:6000");
    for (from, to, sequence, acknowledgement, flags) in
        [(one, two, 10, 0, SYN), (two, one, 90, 11, SYN | ACK), (one, two, 11, 91, ACK)]
    {
        let bytes = frame(from, to, sequence, acknowledgement, flags, &SYN_OPTIONS, 0);
        ledger.note(&bytes, Direction::Out, at(0));
        ledger.note(&bytes, Direction::In, at(1));
    }
    let connecting = ledger.figures(address(one), address(two)).expect("the connecting end");
    let listening = ledger.figures(address(two), address(one)).expect("the listening end");
    assert!(connecting.is_active_opener && !listening.is_active_opener);
    assert_eq!((connecting.segments_out, connecting.segments_in), (2, 1));
    assert_eq!((listening.segments_out, listening.segments_in), (1, 2));
    assert_eq!(connecting.bytes_acknowledged(), 1);
    assert_eq!(listening.bytes_acknowledged(), 0);
}

#[test]
fn a_refused_connection_is_forgotten_and_the_ledger_stays_bounded() {
    let mut ledger = Ledger::default();
    ledger.note(&frame(CLIENT, SERVER, 5, 0, SYN, &[], 0), Direction::Out, at(0));
    assert_eq!(ledger.len(), 1);
    ledger.note(&frame(SERVER, CLIENT, 0, 6, RST | ACK, &[], 0), Direction::In, at(1));
    assert!(ledger.is_empty());
    for port in 0..(CAPACITY + 10) as u16 {
        let client = alloc::format!("10.0.2.15:{}", 1000 + port);
        ledger.note(&frame(&client, SERVER, 5, 0, SYN, &[], 0), Direction::Out, at(i64::from(port)));
    }
    assert_eq!(ledger.len(), CAPACITY);
    // Segments of no followed connection, and frames of other kinds, count
    // for nothing.
    ledger.note(&frame("10.0.2.15:1", SERVER, 5, 0, ACK, &[], 10), Direction::Out, at(0));
    ledger.note(&[0u8; 10], Direction::In, at(0));
    assert_eq!(ledger.len(), CAPACITY);
}

#[test]
fn sequence_positions_unwrap_near_their_reference() {
    assert_eq!(unwrap(0, 5), 5);
    assert_eq!(unwrap(0xffff_fff0, 0x10), 0x1_0000_0010);
    assert_eq!(unwrap(0x1_0000_0010, 0xffff_fff0), 0xffff_fff0);
    assert_eq!(unwrap(5, 0xffff_ffff), 0xffff_ffff);
}
