//! The protocol between two endpoints in one process (`loopback`): partial and blocking reads
//! and writes, the indexes' wrap-around, a stream much larger than its ring, a peer that goes,
//! and which moves kick the peer.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering::SeqCst;
use std::thread;
use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::layout::{Orders, NOTIFY_READ, NOTIFY_WRITE};
use crate::loopback::{pair, pair_at, Kick, Pair};

/// Both rings in the shared page: 1 KiB client to server, 2 KiB back.
const IN_PAGE: Orders = Orders { left: 10, right: 11 };

/// xorshift64: the same bytes for the same seed, however they are cut into chunks.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        buf.iter_mut().for_each(|byte| *byte = self.next() as u8);
    }
}

/// Writes `len` bytes of `seed`'s noise, in blocking writes of 1 to 3000 bytes.
fn send(to: &mut Endpoint<Kick>, seed: u64, len: usize) {
    let (mut data, mut sizes) = (Noise(seed), Noise(!seed));
    let mut chunk = [0; 3000];
    let mut sent = 0;
    while sent < len {
        let n = (sizes.next() as usize % chunk.len() + 1).min(len - sent);
        data.fill(&mut chunk[..n]);
        to.write_all(&chunk[..n]).unwrap();
        sent += n;
    }
}

/// Reads `len` bytes and checks they are `seed`'s noise, in blocking reads of 1 to 700 bytes,
/// pausing now and then: a reader slower than `send`.
fn receive(from: &mut Endpoint<Kick>, seed: u64, len: usize) {
    let (mut data, mut sizes) = (Noise(seed), Noise(seed.rotate_left(17)));
    let (mut buf, mut expected) = ([0; 700], [0; 700]);
    let (mut received, mut reads) = (0, 0);
    while received < len {
        let want = (sizes.next() as usize % buf.len() + 1).min(len - received);
        let n = from.read(&mut buf[..want]).unwrap();
        assert!(n > 0, "end of stream after {received} bytes");
        data.fill(&mut expected[..n]);
        assert!(buf[..n] == expected[..n], "the bytes differ after {received}");
        received += n;
        reads += 1;
        if reads % 16 == 0 {
            thread::sleep(Duration::from_micros(200));
        }
    }
}

fn kind<T>(result: io::Result<T>) -> io::ErrorKind {
    match result {
        Ok(_) => panic!("no error"),
        Err(e) => e.kind(),
    }
}

#[test]
fn writes_and_reads_take_what_fits() {
    let p = pair(IN_PAGE);
    let data: Vec<u8> = (0..1500).map(|i| i as u8).collect();
    assert_eq!(p.client.try_write(&data).unwrap(), 1024);
    assert_eq!(kind(p.client.try_write(&data)), io::ErrorKind::WouldBlock);
    assert_eq!((p.client.buffer_space(), p.server.data_ready()), (0, 1024));

    let mut out = [0; 3000];
    assert_eq!(p.server.try_read(&mut out[..100]).unwrap(), 100);
    assert_eq!(p.server.try_read(&mut out[100..]).unwrap(), 924);
    assert_eq!(&out[..1024], &data[..1024]);
    assert_eq!(kind(p.server.try_read(&mut out)), io::ErrorKind::WouldBlock);
    assert_eq!(p.client.buffer_space(), 1024);

    assert_eq!(p.server.try_write(&[7; 3000]).unwrap(), 2048);
    assert_eq!(p.client.try_read(&mut out[..2000]).unwrap(), 2000);
    assert_eq!(p.client.try_read(&mut out).unwrap(), 48);
    assert_eq!((p.server.try_write(&[]).unwrap(), p.server.try_read(&mut []).unwrap()), (0, 0));
}

#[test]
fn indexes_wrap_past_the_rings_and_past_u32() {
    let start = u32::MAX - 1500;
    let p = pair_at(IN_PAGE, start);
    let mut noise = Noise(1);
    for _ in 0..12 {
        for (writer, reader, len) in [(&p.client, &p.server, 700), (&p.server, &p.client, 1300)] {
            let mut data = vec![0; len];
            noise.fill(&mut data);
            assert_eq!(writer.try_write(&data).unwrap(), len);
            let mut out = vec![0; len];
            assert_eq!(reader.try_read(&mut out).unwrap(), len);
            assert!(out == data);
        }
    }
    let shared = p.shared();
    for (ring, len) in [(&shared.left, 700u32), (&shared.right, 1300)] {
        let prod = ring.prod.load(SeqCst);
        assert_eq!(prod, start.wrapping_add(12 * len));
        assert!(prod < start, "the index wrapped");
        assert_eq!(ring.cons.load(SeqCst), prod);
    }
}

#[test]
fn a_fast_writer_and_a_slow_reader_lose_nothing() {
    const LEN: usize = 1 << 20;
    let Pair { mut server, client, .. } = pair(IN_PAGE);
    let writer = thread::spawn(move || {
        let mut client = client;
        send(&mut client, 7, LEN);
    });
    receive(&mut server, 7, LEN);
    writer.join().unwrap();
    assert_eq!(server.read(&mut [0; 10]).unwrap(), 0, "the writer has gone: end of stream");
}

#[test]
fn rings_in_pages_of_their_own_carry_streams_both_ways() {
    for orders in [Orders { left: 12, right: 16 }, Orders { left: 11, right: 13 }] {
        let Pair { mut server, client, .. } = pair(orders);
        let peer = thread::spawn(move || {
            let mut client = client;
            send(&mut client, 3, 300_000);
            receive(&mut client, 4, 300_000);
        });
        receive(&mut server, 3, 300_000);
        send(&mut server, 4, 300_000);
        peer.join().unwrap();
    }
}

#[test]
fn a_closed_peer_leaves_its_data_then_the_end_and_fails_writes() {
    let Pair { mut server, mut client, .. } = pair(IN_PAGE);
    client.write_all(&[5; 500]).unwrap();
    drop(client);
    assert!(!server.is_open());
    let mut out = [0; 300];
    server.read_exact(&mut out).unwrap();
    assert_eq!(server.try_read(&mut out).unwrap(), 200);
    assert_eq!(server.try_read(&mut out).unwrap(), 0);
    assert_eq!(server.read(&mut out).unwrap(), 0);
    assert_eq!(kind(server.read_exact(&mut out)), io::ErrorKind::UnexpectedEof);
    assert_eq!(kind(server.try_write(b"x")), io::ErrorKind::BrokenPipe);
    assert_eq!(kind(server.write_all(b"x")), io::ErrorKind::BrokenPipe);
}

#[test]
fn a_live_flag_cleared_under_a_side_ends_the_stream() {
    // As the kernel's unmap notification does when a side's mapping goes.
    let p = pair(IN_PAGE);
    p.client.try_write(&[1; 300]).unwrap();
    p.server.try_write(&[2; 400]).unwrap();
    p.shared().cli_live.store(0, SeqCst);
    p.shared().srv_live.store(0, SeqCst);
    let mut out = [0; 1000];
    for (side, pending) in [(&p.server, 300), (&p.client, 400)] {
        assert!(!side.is_open());
        assert_eq!(side.try_read(&mut out).unwrap(), pending);
        assert_eq!(side.try_read(&mut out).unwrap(), 0);
        assert_eq!(kind(side.try_write(b"x")), io::ErrorKind::BrokenPipe);
    }
}

#[test]
fn a_blocked_writer_fails_when_its_reader_goes() {
    let Pair { server, mut client, .. } = pair(IN_PAGE);
    let writer = thread::spawn(move || {
        let mut server = server;
        server.write_all(&[9; 10_000])
    });
    client.read_exact(&mut [0; 1000]).unwrap();
    drop(client);
    assert_eq!(kind(writer.join().unwrap()), io::ErrorKind::BrokenPipe);
}

#[test]
fn a_blocked_reader_sees_the_end_when_its_writer_goes() {
    let Pair { server, client, .. } = pair(IN_PAGE);
    let reader = thread::spawn(move || {
        let mut server = server;
        server.read(&mut [0; 10])
    });
    thread::sleep(Duration::from_millis(20));
    drop(client);
    assert_eq!(reader.join().unwrap().unwrap(), 0);
}

#[test]
fn sides_kick_only_when_asked() {
    let p = pair(IN_PAGE);
    let shared = p.shared();
    let kicks = || (p.server_kicks.load(SeqCst), p.client_kicks.load(SeqCst));
    let mut out = [0; 100];

    // Connecting kicks the server; each side starts out asking the other for write kicks.
    assert_eq!(kicks(), (0, 1));
    assert!(p.server.handle_event().unwrap());
    assert!(!p.server.handle_event().unwrap());
    assert_eq!((shared.cli_notify.load(SeqCst), shared.srv_notify.load(SeqCst)), (NOTIFY_WRITE, NOTIFY_WRITE));

    // Asked, the client kicks on its next write, which spends the request.
    p.client.try_write(&[1; 10]).unwrap();
    assert_eq!((kicks(), shared.cli_notify.load(SeqCst)), ((0, 2), 0));
    p.client.try_write(&[1; 10]).unwrap();
    assert_eq!(kicks(), (0, 2));

    // Finding less than it wants, a reader asks again; finding enough, it does not.
    assert_eq!(p.server.try_read(&mut out).unwrap(), 20);
    assert_eq!(shared.cli_notify.load(SeqCst), NOTIFY_WRITE);
    assert_eq!(kicks(), (0, 2), "the client did not ask for read kicks");
    p.client.try_write(&[1; 10]).unwrap();
    assert_eq!(kicks(), (0, 3));
    assert_eq!(p.server.try_read(&mut out[..10]).unwrap(), 10);
    p.client.try_write(&[1; 5]).unwrap();
    assert_eq!((kicks(), shared.cli_notify.load(SeqCst)), ((0, 3), 0));

    // Finding too little room, a writer asks for a read kick, which the next read sends.
    assert_eq!(p.client.try_write(&[1; 2000]).unwrap(), 1019);
    assert_eq!(shared.srv_notify.load(SeqCst), NOTIFY_WRITE | NOTIFY_READ);
    assert_eq!(kicks(), (0, 3));
    assert_eq!(p.server.try_read(&mut out).unwrap(), 100);
    assert_eq!((kicks(), shared.srv_notify.load(SeqCst)), ((1, 3), NOTIFY_WRITE));
    p.server.try_read(&mut out).unwrap();
    assert_eq!(kicks(), (1, 3));
    assert!(p.client.handle_event().unwrap());
    assert!(!p.client.handle_event().unwrap());

    // The client asked for write kicks when it connected.
    p.server.try_write(&[2; 10]).unwrap();
    assert_eq!((kicks(), shared.srv_notify.load(SeqCst)), ((2, 3), 0));
    p.server.try_write(&[2; 10]).unwrap();
    assert_eq!(kicks(), (2, 3));
}
