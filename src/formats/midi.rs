//! Standard MIDI files: notes written as a format-0 file, and read back from format 0 or 1.
//!
//! Written files have one track on channel 1, 480 ticks per quarter note and a tempo of
//! 120 beats per minute, so one tick is 1/960 s and times are exact to about a millisecond.
//!
//! The bytes are `midly`'s, with its `strict` feature so that a truncated or malformed file is
//! an error rather than silently shortened; midly borrows events from the input and sizes its
//! buffers by the bytes present, never by a declared count. This module turns its events into
//! notes in seconds.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::path::Path;

use midly::num::{u4, u7, u15, u24, u28};
use midly::{
    Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind, write_std,
};

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
/// Whatever writing to `w` fails with; [`io::ErrorKind::InvalidInput`] for an event more than
/// 2^28 - 1 ticks (about 77 hours) after the one before it, which MIDI cannot express.
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

    let mut track = Vec::with_capacity(events.len() + 2);
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(TEMPO_US))),
    });
    let mut last = 0;
    for (t, kind, pitch, velocity) in events {
        let delta = u32::try_from(t - last)
            .ok()
            .and_then(u28::try_from)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a note is more than 2^28 - 1 ticks after the event before it",
                )
            })?;
        last = t;
        let (key, vel) = (u7::new(pitch), u7::new(velocity));
        let message = if kind == 1 {
            MidiMessage::NoteOn { key, vel }
        } else {
            MidiMessage::NoteOff {
                key,
                vel: u7::new(0x40),
            }
        };
        track.push(TrackEvent {
            delta,
            kind: TrackEventKind::Midi {
                channel: u4::new(0),
                message,
            },
        });
    }
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    let header = Header::new(
        Format::SingleTrack,
        Timing::Metrical(u15::new(TICKS_PER_QUARTER)),
    );
    write_std(&header, [&track], w)
}

/// Writes `notes` as a standard MIDI file at `path` atomically (temporary name, then rename).
///
/// # Errors
/// [`crate::Error::Write`] if the file cannot be written.
pub fn save_midi(path: &Path, notes: &[NoteEvent]) -> crate::Result<()> {
    crate::atomic::write_atomically(path, |file| write_midi(file, notes))
}

/// The notes of a format-0 or format-1 standard MIDI file with metrical timing, on all
/// channels, sorted by onset then pitch. Tempo changes are followed; a note-on with velocity
/// 0 ends a note; an unmatched note-off is ignored and a note never ended lasts to the end of
/// the file.
///
/// # Errors
/// [`MidiError::Format`] for malformed data (a truncated chunk or event, a data byte with its
/// top bit set, a track count that differs from the tracks present, ...) or SMPTE timing.
pub fn read_midi(bytes: &[u8]) -> Result<Vec<NoteEvent>, MidiError> {
    let smf = Smf::parse(bytes).map_err(|e| MidiError::Format(e.kind().message()))?;
    let division = match smf.header.timing {
        Timing::Metrical(d) if d.as_int() > 0 => d.as_int(),
        _ => return Err(MidiError::Format("SMPTE timing is not supported")),
    };

    // (tick, sequence, event) with event: tempo, on (channel, pitch, velocity), off.
    let mut events: Vec<(u64, usize, Event)> = Vec::new();
    for track in &smf.tracks {
        let mut tick = 0u64;
        for event in track {
            tick += u64::from(event.delta.as_int());
            let event = match event.kind {
                TrackEventKind::Meta(MetaMessage::Tempo(us)) => Event::Tempo(us.as_int()),
                TrackEventKind::Meta(MetaMessage::EndOfTrack) => break,
                TrackEventKind::Midi { channel, message } => match message {
                    MidiMessage::NoteOn { key, vel } if vel > 0 => {
                        Event::On((channel.as_int(), key.as_int()), vel.as_int())
                    }
                    MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                        Event::Off((channel.as_int(), key.as_int()))
                    }
                    _ => continue,
                },
                _ => continue,
            };
            events.push((tick, events.len(), event));
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
    // The notes sounding, per (channel, key), oldest first: a note-off ends the oldest. One
    // queue per key keeps a note-off constant-time, however many notes a file leaves open
    // (a search of one list of them all made reading quadratic: seconds for a 1 MB file).
    let mut open: HashMap<(u8, u8), VecDeque<_>> = HashMap::new();
    let mut notes = Vec::new();
    for (n, (tick, _, event)) in events.into_iter().enumerate() {
        now += (tick - last_tick) as f64 * f64::from(tempo) / 1e6 / f64::from(division);
        last_tick = tick;
        match event {
            Event::Tempo(us) => tempo = us,
            Event::On(key, velocity) => open.entry(key).or_default().push_back((n, now, velocity)),
            Event::Off(key) => {
                if let Some((_, onset, velocity)) = open.get_mut(&key).and_then(VecDeque::pop_front)
                {
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
    // Notes never ended, in the order they began.
    let mut unended: Vec<(usize, u8, f64, u8)> = open
        .into_iter()
        .flat_map(|((_, pitch), queue)| {
            queue
                .into_iter()
                .map(move |(n, onset, velocity)| (n, pitch, onset, velocity))
        })
        .collect();
    unended.sort_unstable_by_key(|u| u.0);
    for (_, pitch, onset, velocity) in unended {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A format-1 file: a tempo map in the first track (120, then 60 beats per minute from
    /// beat 1), notes in the second with running status, a note-on of velocity 0 as note-off,
    /// a second channel, and one note never ended.
    #[test]
    fn a_format_1_file_with_a_tempo_change_is_read_in_seconds() {
        let mut bytes = b"MThd\0\0\0\x06\0\x01\0\x02\x01\xE0".to_vec(); // 480 ticks/beat
        let tempo_track = [
            0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20, // 500 000 us per beat
            0x83, 0x60, 0xFF, 0x51, 0x03, 0x0F, 0x42, 0x40, // at tick 480: 1 000 000 us
            0x00, 0xFF, 0x2F, 0x00,
        ];
        let note_track = [
            0x00, 0x90, 60, 100, // C4 on at 0 s
            0x83, 0x60, 60, 0, // running status, velocity 0: off at tick 480 = 0.5 s
            0x00, 0x91, 64, 80, // E4 on channel 2 at 0.5 s
            0x83, 0x60, 0x81, 64, 0x40, // off at tick 960 = 0.5 s + 1 s
            0x00, 0x90, 67, 90, // G4 on, never ended
            0x00, 0xFF, 0x2F, 0x00,
        ];
        for track in [&tempo_track[..], &note_track[..]] {
            bytes.extend_from_slice(b"MTrk");
            bytes.extend_from_slice(&(track.len() as u32).to_be_bytes());
            bytes.extend_from_slice(track);
        }
        let notes = read_midi(&bytes).unwrap();
        let got: Vec<(f64, f64, u8, u8)> = notes
            .iter()
            .map(|n| (n.onset_s, n.offset_s, n.pitch, n.velocity))
            .collect();
        assert_eq!(
            got,
            [(0.0, 0.5, 60, 100), (0.5, 1.5, 64, 80), (1.5, 1.5, 67, 90)]
        );
    }

    #[test]
    fn smpte_timing_is_rejected() {
        let mut bytes = Vec::new();
        write_midi(&mut bytes, &[]).unwrap();
        bytes[12] = 0xE7; // -25 frames per second
        assert!(matches!(read_midi(&bytes), Err(MidiError::Format(m)) if m.contains("SMPTE")));
    }

    #[test]
    fn a_note_beyond_the_range_of_midi_times_is_an_error_not_a_wrong_file() {
        let far = NoteEvent {
            onset_s: 300_000.0,
            offset_s: 300_001.0,
            pitch: 60,
            velocity: 90,
        };
        let err = write_midi(&mut Vec::new(), &[far]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let near = NoteEvent {
            onset_s: 270_000.0,
            offset_s: 270_001.0,
            ..far
        };
        let mut bytes = Vec::new();
        write_midi(&mut bytes, &[near]).unwrap();
        assert_eq!(read_midi(&bytes).unwrap(), [near]);
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
