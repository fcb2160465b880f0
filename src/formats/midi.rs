//! Standard MIDI files: notes written as a format-0 file, and read back from format 0 or 1.
//!
//! Written files have one track on channel 1, 480 ticks per quarter note and a tempo of
//! 120 beats per minute, so one tick is 1/960 s and times are exact to about a millisecond.

use std::io::{self, Write};
use std::path::Path;

/// One note: when it starts and ends, its pitch and its velocity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoteEvent {
    /// Onset in seconds.
    pub onset_s: f64,
    /// Offset (release) in seconds, after the onset.
    pub offset_s: f64,
    /// MIDI note number (60 is middle C).
    pub pitch: u8,
    /// Velocity, 1 to 127.
    pub velocity: u8,
}

/// Ticks per quarter note in written files.
pub const TICKS_PER_QUARTER: u16 = 480;
/// Microseconds per quarter note in written files (120 beats per minute).
pub const TEMPO_US: u32 = 500_000;

/// A file that is not a standard MIDI file this module can read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MidiError {
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The bytes are not a well-formed standard MIDI file.
    #[error("not a standard MIDI file: {0}")]
    Format(&'static str),
}

/// Writes `notes` as a format-0 standard MIDI file. Notes are sorted by time; a note-off and
/// a note-on at the same tick are written off first. Velocities are clamped to 1..=127 and
/// every note lasts at least one tick.
///
/// # Errors
/// Whatever writing to `w` fails with.
///
/// ```
/// use demix::formats::midi::{read_midi, write_midi, NoteEvent};
/// let notes = vec![NoteEvent { onset_s: 0.5, offset_s: 1.0, pitch: 60, velocity: 90 }];
/// let mut bytes = Vec::new();
/// write_midi(&mut bytes, &notes)?;
/// assert_eq!(read_midi(&bytes)?, notes);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_midi(w: &mut impl Write, notes: &[NoteEvent]) -> io::Result<()> {
    let ticks_per_s = f64::from(TICKS_PER_QUARTER) * 1e6 / f64::from(TEMPO_US);
    let tick = |s: f64| (s.max(0.0) * ticks_per_s).round() as u64;
    // (tick, 0 = off before 1 = on, pitch, velocity)
    let mut events: Vec<(u64, u8, u8, u8)> = Vec::with_capacity(2 * notes.len());
    for note in notes {
        let on = tick(note.onset_s);
        let off = tick(note.offset_s).max(on + 1);
        let pitch = note.pitch.min(127);
        events.push((on, 1, pitch, note.velocity.clamp(1, 127)));
        events.push((off, 0, pitch, 0));
    }
    events.sort_unstable();

    let mut track = Vec::new();
    // Tempo meta event.
    track.extend_from_slice(&[0x00, 0xFF, 0x51, 0x03]);
    track.extend_from_slice(&TEMPO_US.to_be_bytes()[1..]);
    let mut last = 0;
    for (t, kind, pitch, velocity) in events {
        write_varint(&mut track, t - last);
        last = t;
        if kind == 1 {
            track.extend_from_slice(&[0x90, pitch, velocity]);
        } else {
            track.extend_from_slice(&[0x80, pitch, 0x40]);
        }
    }
    track.extend_from_slice(&[0x00, 0xFF, 0x2F, 0x00]);

    w.write_all(b"MThd")?;
    w.write_all(&6u32.to_be_bytes())?;
    w.write_all(&0u16.to_be_bytes())?; // format 0
    w.write_all(&1u16.to_be_bytes())?; // one track
    w.write_all(&TICKS_PER_QUARTER.to_be_bytes())?;
    w.write_all(b"MTrk")?;
    let len = u32::try_from(track.len())
        .map_err(|_| io::Error::other("too many notes for one MIDI track"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(&track)
}

/// Writes `notes` as a standard MIDI file at `path` atomically (temporary name, then rename).
///
/// # Errors
/// [`crate::Error::Write`] if the file cannot be written.
pub fn save_midi(path: &Path, notes: &[NoteEvent]) -> crate::Result<()> {
    crate::atomic::write_atomically(path, |file| write_midi(file, notes))
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    let mut bytes = [0u8; 10];
    let mut i = bytes.len() - 1;
    bytes[i] = (v & 0x7F) as u8;
    v >>= 7;
    while v > 0 {
        i -= 1;
        bytes[i] = 0x80 | (v & 0x7F) as u8;
        v >>= 7;
    }
    out.extend_from_slice(&bytes[i..]);
}

/// The notes of a format-0 or format-1 standard MIDI file with metrical timing, on all
/// channels, sorted by onset then pitch. Tempo changes are followed; a note-on with velocity
/// 0 ends a note; an unmatched note-off is ignored and a note never ended lasts to the end of
/// the file.
///
/// # Errors
/// [`MidiError::Format`] for malformed data or SMPTE timing.
pub fn read_midi(bytes: &[u8]) -> Result<Vec<NoteEvent>, MidiError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(4)? != b"MThd" {
        return Err(MidiError::Format("no MThd header"));
    }
    let header_len = r.u32()? as usize;
    let header = r.take(header_len)?;
    if header.len() < 6 {
        return Err(MidiError::Format("short header"));
    }
    let tracks = u16::from_be_bytes([header[2], header[3]]);
    let division = u16::from_be_bytes([header[4], header[5]]);
    if division & 0x8000 != 0 || division == 0 {
        return Err(MidiError::Format("SMPTE timing is not supported"));
    }

    // (tick, sequence, event) with event: tempo, on (channel, pitch, velocity), off.
    let mut events: Vec<(u64, usize, Event)> = Vec::new();
    for _ in 0..tracks {
        if r.take(4)? != b"MTrk" {
            return Err(MidiError::Format("missing MTrk chunk"));
        }
        let len = r.u32()? as usize;
        let mut t = Reader {
            bytes: r.take(len)?,
            pos: 0,
        };
        let (mut tick, mut status) = (0u64, 0u8);
        while t.pos < t.bytes.len() {
            tick += t.varint()?;
            let mut b = t.u8()?;
            if b == 0xFF {
                let kind = t.u8()?;
                let len = t.varint()? as usize;
                let data = t.take(len)?;
                if kind == 0x51 && len == 3 {
                    let us = u32::from_be_bytes([0, data[0], data[1], data[2]]);
                    events.push((tick, events.len(), Event::Tempo(us)));
                } else if kind == 0x2F {
                    break;
                }
                continue;
            }
            if b == 0xF0 || b == 0xF7 {
                let len = t.varint()? as usize;
                t.take(len)?;
                continue;
            }
            if b & 0x80 != 0 {
                status = b;
                b = t.u8()?;
            } else if status == 0 {
                return Err(MidiError::Format("running status without a status byte"));
            }
            let channel = status & 0x0F;
            match status & 0xF0 {
                0xC0 | 0xD0 => {}
                kind => {
                    let value = t.u8()?;
                    let key = (channel, b);
                    match kind {
                        0x90 if value > 0 => {
                            events.push((tick, events.len(), Event::On(key, value)))
                        }
                        0x80 | 0x90 => events.push((tick, events.len(), Event::Off(key))),
                        _ => {}
                    }
                }
            }
        }
    }
    // At one tick: tempo first, then offs, then ons (stable by file order within a kind).
    events.sort_by_key(|(tick, seq, e)| {
        let rank = match e {
            Event::Tempo(_) => 0,
            Event::Off(_) => 1,
            Event::On(..) => 2,
        };
        (*tick, rank, *seq)
    });
    let (mut tempo, mut last_tick, mut now) = (500_000u32, 0u64, 0f64);
    let mut open: Vec<((u8, u8), f64, u8)> = Vec::new();
    let mut notes = Vec::new();
    for (tick, _, event) in events {
        now += (tick - last_tick) as f64 * f64::from(tempo) / 1e6 / f64::from(division);
        last_tick = tick;
        match event {
            Event::Tempo(us) => tempo = us,
            Event::On(key, velocity) => open.push((key, now, velocity)),
            Event::Off(key) => {
                if let Some(i) = open.iter().position(|(k, _, _)| *k == key) {
                    let (_, onset, velocity) = open.remove(i);
                    notes.push(NoteEvent {
                        onset_s: onset,
                        offset_s: now,
                        pitch: key.1,
                        velocity,
                    });
                }
            }
        }
    }
    for ((_, pitch), onset, velocity) in open {
        notes.push(NoteEvent {
            onset_s: onset,
            offset_s: now,
            pitch,
            velocity,
        });
    }
    notes.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s).then(a.pitch.cmp(&b.pitch)));
    Ok(notes)
}

enum Event {
    Tempo(u32),
    On((u8, u8), u8),
    Off((u8, u8)),
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MidiError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(MidiError::Format("unexpected end of data"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, MidiError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, MidiError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn varint(&mut self) -> Result<u64, MidiError> {
        let mut v = 0u64;
        for _ in 0..4 {
            let b = self.u8()?;
            v = (v << 7) | u64::from(b & 0x7F);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(MidiError::Format(
            "variable-length number longer than 4 bytes",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_standard_examples() {
        for (v, bytes) in [
            (0u64, vec![0x00]),
            (0x40, vec![0x40]),
            (0x7F, vec![0x7F]),
            (0x80, vec![0x81, 0x00]),
            (0x2000, vec![0xC0, 0x00]),
            (0x3FFF, vec![0xFF, 0x7F]),
            (0x0FFF_FFFF, vec![0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(out, bytes, "{v:#x}");
            let mut r = Reader {
                bytes: &out,
                pos: 0,
            };
            assert_eq!(r.varint().unwrap(), v);
        }
    }

    #[test]
    fn overlapping_and_repeated_notes_round_trip() {
        let notes = vec![
            NoteEvent {
                onset_s: 0.0,
                offset_s: 0.5,
                pitch: 60,
                velocity: 100,
            },
            NoteEvent {
                onset_s: 0.25,
                offset_s: 1.0,
                pitch: 64,
                velocity: 1,
            },
            NoteEvent {
                onset_s: 0.5,
                offset_s: 0.75,
                pitch: 60,
                velocity: 127,
            },
        ];
        let mut bytes = Vec::new();
        write_midi(&mut bytes, &notes).unwrap();
        assert_eq!(read_midi(&bytes).unwrap(), notes);
    }

    #[test]
    fn truncated_files_are_rejected() {
        let mut bytes = Vec::new();
        write_midi(&mut bytes, &[]).unwrap();
        for cut in [3, 10, bytes.len() - 2] {
            assert!(read_midi(&bytes[..cut]).is_err(), "{cut}");
        }
    }
}
