//! An in-process pipe: the thread that verifies a stream hands it to the thread that extracts
//! it in pieces of up to 1 MiB, without a trip through the kernel and its 64 KiB pipe buffer.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

const PIECE: usize = 1 << 20;

/// A bounded pipe: the writer blocks when four pieces wait unread.
pub fn pipe() -> (Reader, Writer) {
    let (tx, rx) = sync_channel(4);
    (
        Reader {
            rx,
            piece: Vec::new(),
            pos: 0,
        },
        Writer {
            tx,
            piece: Vec::with_capacity(PIECE),
        },
    )
}

/// The reading end: end of stream once the writer is dropped and everything is read.
#[derive(Debug)]
pub struct Reader {
    rx: Receiver<Vec<u8>>,
    piece: Vec<u8>,
    pos: usize,
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.piece.len() {
            match self.rx.recv() {
                Ok(piece) => {
                    self.piece = piece;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len() - self.pos);
        buf[..n].copy_from_slice(&self.piece[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The writing end: a write fails with `BrokenPipe` once the reader is gone. Dropping it
/// sends what is buffered.
#[derive(Debug)]
pub struct Writer {
    tx: SyncSender<Vec<u8>>,
    piece: Vec<u8>,
}

impl Writer {
    fn send(&mut self) -> io::Result<()> {
        if self.piece.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(PIECE));
        self.tx
            .send(piece)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader stopped"))
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(PIECE - self.piece.len());
        self.piece.extend_from_slice(&buf[..n]);
        if self.piece.len() == PIECE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_then_end() {
        let (mut r, mut w) = pipe();
        let data: Vec<u8> = (0..3 * PIECE + 12_345).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            for part in sent.chunks(70_000) {
                w.write_all(part).unwrap();
            }
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn a_gone_reader_breaks_the_pipe() {
        let (r, mut w) = pipe();
        drop(r);
        let err = w.write_all(&vec![0; 2 * PIECE]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
