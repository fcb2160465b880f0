#!/usr/bin/env python3
"""Generate demix's quality corpus: multitrack songs with exact stems, and solo pieces with
their notes, in a tuning split and a validation split that share no piece.

Every song is composed here as MIDI (a key, a tempo, a chord progression and one part per
source, each part written by a role: melody, comping, sustained chords, bass line or drum
pattern), every part is rendered alone with FluidSynth (dry: its reverb and chorus are off),
given a random pan (MIDI CC 10) and level, optionally put in a room (one synthetic stereo
impulse response per song, convolved with every stem, so the stems still add up), and the mix
is the exact sum of the stems (stems are rounded to 24 bits first, so the stored mix equals
the sum of the stored stems sample for sample). Each source also gets a 15 s training clip:
the same instrument, sound font and room playing other notes, another key, tempo and rhythm.
Solo pieces (piano and four other instruments, polyphonic: a melody over broken or block
chords) come with their MIDI notes for transcription scoring, and with a training clip of the
same instrument, sound font and room playing every semitone of the piece's range once, one
note at a time and rising (what a user would record to learn their instrument's notes).

The splits share no piece: the tuning split is composed from seeds (seed, "tuning", i) and the
validation split from (seed, "validation", i). The tuning split uses the FluidR3 sound font
only; a third of the validation songs and solo pieces use TimGM6mb instead, a sound font that
no default was ever chosen on. Everything is deterministic for a given --seed, FluidSynth
version and sound-font files.

Layout (as ../shared/dev-mixes, plus a family per source in meta.json):
    OUT/<split>/songs/<song>/mix.flac, <source>.flac, <source>.mid, song.mid, meta.json
    OUT/<split>/songs/<song>/train/<source>.flac, <source>.mid
    OUT/<split>/solo/<piece>/mix.flac, notes.mid, train.flac, train.mid, meta.json
    OUT/<split>/index.json           every song and piece of the split with its sources

Usage (not run by CI; needs `apt-get install fluidsynth fluid-soundfont-gm timgm6mb-soundfont`
and `pip install numpy scipy soundfile pretty_midi`):
    python3 scripts/make_corpus.py -o corpus            # 40 + 40 songs, 10 + 12 solo pieces
    python3 scripts/make_corpus.py -o corpus --songs 6 --solo 2   # a quick small corpus
    python3 scripts/make_corpus.py -o corpus-more --splits tuning --first 40 --songs 40 --solo 0
                                    # 40 more tuning songs (tun040-tun079), in their own folder
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pretty_midi
import scipy.signal
import soundfile as sf

SR = 44100
SONG_S, TRAIN_S, SOLO_S = 20.0, 15.0, 20.0
SOLO_TRAIN_STEP_S = 0.7  # one note of a solo piece's training clip every 0.7 s
SOUNDFONTS = {
    "FluidR3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "TimGM6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
}

# General MIDI programs (0-based) by instrument family. `drums` holds drum-kit numbers
# (bank 128): standard, room, power, electronic, TR-808, brush.
FAMILIES = {
    "keys": [0, 1, 4, 5, 6],          # grand, bright, e-piano 1/2, harpsichord
    "organ": [16, 17, 19],            # drawbar, percussive, church
    "mallets": [8, 11, 12, 13],       # celesta, vibraphone, marimba, xylophone
    "plucked": [24, 25, 26, 46, 105],  # nylon, steel, jazz guitar, harp, banjo
    "bowed": [40, 41, 42, 48],        # violin, viola, cello, string ensemble
    "bass": [32, 33, 34, 35, 38],     # acoustic, finger, pick, fretless, synth bass
    "brass": [56, 57, 60, 61],        # trumpet, trombone, french horn, brass section
    "winds": [65, 68, 71, 73],        # alto sax, oboe, clarinet, flute
    "voice": [52, 53, 54],            # choir aahs, voice oohs, synth voice
    "pad": [88, 89, 90, 91],          # new age, warm, polysynth, choir pad
    "lead": [80, 81, 82, 87],         # square, sawtooth, calliope, bass + lead
    "drums": [0, 8, 16, 24, 25, 40],  # kits
}
# Which families can play which role; every song has a distinct role per source.
ROLES = {
    "melody": ["lead", "winds", "brass", "bowed", "voice", "mallets", "keys", "plucked", "organ"],
    "comp": ["keys", "plucked", "mallets", "organ"],
    "chords": ["pad", "organ", "bowed", "voice", "brass"],
    "bass": ["bass"],
    "drums": ["drums"],
}
# Comfortable MIDI ranges per family (low, high) for melodies and chords.
RANGES = {
    "keys": (48, 84), "organ": (48, 79), "mallets": (55, 88), "plucked": (45, 76),
    "bowed": (48, 84), "bass": (28, 52), "brass": (50, 77), "winds": (57, 86),
    "voice": (52, 76), "pad": (48, 79), "lead": (55, 84),
}
SOLO_PROGRAMS = {"piano": 0, "guitar": 24, "marimba": 12, "harp": 46, "epiano": 4}
MAJOR, MINOR = [0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10]
PROGRESSIONS = [[0, 4, 5, 3], [0, 5, 3, 4], [0, 3, 4, 4], [5, 3, 0, 4], [0, 3, 6, 2],
                [1, 4, 0, 0], [0, 4, 5, 2], [0, 6, 5, 4]]


def rng_for(*parts):
    """A generator seeded by a stable hash of `parts` (independent of Python's hash seed)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class Harmony:
    """Key, mode, tempo and chord progression of one piece."""

    def __init__(self, rng, duration):
        self.key = int(rng.integers(0, 12))
        self.minor = bool(rng.random() < 0.4)
        self.tempo = float(rng.choice([72, 84, 90, 96, 100, 108, 116, 124, 132]))
        self.progression = [int(d) for d in PROGRESSIONS[rng.integers(len(PROGRESSIONS))]]
        self.bar = 4 * 60.0 / self.tempo
        self.duration = duration
        self.scale = MINOR if self.minor else MAJOR

    def pitch(self, degree, octave_base):
        """MIDI pitch of a scale degree (may exceed 0..6) at or above `octave_base`."""
        octave, step = divmod(degree, 7)
        return octave_base + 12 * octave + (self.key + self.scale[step]) % 12

    def chord(self, bar):
        """Scale degrees of the triad (plus seventh) of the chord under `bar`."""
        root = self.progression[bar % len(self.progression)]
        return [root, root + 2, root + 4, root + 6]

    def bars(self):
        n = int(np.ceil(self.duration / self.bar))
        return [(b, b * self.bar) for b in range(n)]

    def describe(self):
        return dict(key=self.key, mode="minor" if self.minor else "major", tempo=self.tempo,
                    progression=self.progression)


def in_range(pitch, low, high):
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return pitch


def add(notes, start, length, pitch, velocity, end):
    if start < end - 0.05:
        notes.append(pretty_midi.Note(int(velocity), int(pitch), float(start),
                                      float(min(start + length, end))))


def melody(rng, h, family, notes):
    low, high = RANGES[family]
    beat = h.bar / 4
    rhythm = rng.choice(["quarters", "mixed", "long"])
    degree = int(rng.integers(0, 7))
    base = low + 12 * ((high - low) // 24)
    for bar, t0 in h.bars():
        t = t0
        while t < t0 + h.bar - 1e-9:
            if rhythm == "long":
                length = beat * rng.choice([2, 4])
            elif rhythm == "quarters":
                length = beat
            else:
                length = beat * rng.choice([0.5, 1, 1, 1.5, 2])
            length = min(length, t0 + h.bar - t)
            if rng.random() < 0.12:  # a rest
                t += length
                continue
            tones = h.chord(bar)[:3]
            if t == t0 and rng.random() < 0.7:
                degree = int(rng.choice(tones)) + 7 * int(np.floor(degree / 7))
            else:
                degree += int(rng.choice([-2, -1, -1, 1, 1, 2, 0, 3, -3]))
            p = in_range(h.pitch(degree, base), low, high)
            add(notes, t, length * rng.uniform(0.8, 1.0), p, rng.integers(70, 115), h.duration)
            t += length


def comp(rng, h, family, notes):
    low, high = RANGES[family]
    beat = h.bar / 4
    style = rng.choice(["block", "broken", "arpeggio", "offbeat"])
    base = low + 6
    for bar, t0 in h.bars():
        degrees = h.chord(bar)[: 3 + int(rng.random() < 0.3)]
        pitches = sorted(in_range(h.pitch(d, base), low, high) for d in degrees)
        vel = rng.integers(55, 100)
        if style == "block":
            for beat_i in (0, 2):
                for p in pitches:
                    add(notes, t0 + beat_i * beat, 2 * beat * 0.95, p, vel, h.duration)
        elif style == "offbeat":
            for beat_i in range(4):
                for p in pitches:
                    add(notes, t0 + (beat_i + 0.5) * beat, beat * 0.4, p, vel, h.duration)
        else:
            step = beat / 2 if style == "arpeggio" else beat
            order = pitches + pitches[-2:0:-1] if style == "arpeggio" else pitches
            for i in range(int(round(h.bar / step))):
                p = order[i % len(order)]
                add(notes, t0 + i * step, step * (1.8 if style == "broken" else 0.95), p,
                    vel + rng.integers(-10, 10), h.duration)


def chords(rng, h, family, notes):
    low, high = RANGES[family]
    base = low + 7
    bars_per_chord = int(rng.choice([1, 2]))
    for bar, t0 in h.bars():
        if bar % bars_per_chord:
            continue
        degrees = h.chord(bar // bars_per_chord * bars_per_chord)[:3]
        vel = rng.integers(55, 95)
        for d in degrees:
            p = in_range(h.pitch(d, base), low, high)
            add(notes, t0, h.bar * bars_per_chord * 0.98, p, vel, h.duration)


def bass(rng, h, family, notes):
    low, high = RANGES[family]
    beat = h.bar / 4
    style = rng.choice(["roots", "eighths", "walking", "syncopated"])
    for bar, t0 in h.bars():
        root = h.chord(bar)[0]
        p = in_range(h.pitch(root, 28), low, low + 14)
        fifth = in_range(h.pitch(root + 4, 28), low, high)
        vel = rng.integers(80, 115)
        if style == "roots":
            add(notes, t0, 2 * beat * 0.9, p, vel, h.duration)
            add(notes, t0 + 2 * beat, 2 * beat * 0.9, rng.choice([p, fifth]), vel, h.duration)
        elif style == "eighths":
            for i in range(8):
                add(notes, t0 + i * beat / 2, beat / 2 * 0.85, p, vel - 10 * (i % 2), h.duration)
        elif style == "walking":
            for i, d in enumerate([root, root + 2, root + 4, root + 5]):
                add(notes, t0 + i * beat, beat * 0.9, in_range(h.pitch(d, 28), low, high), vel,
                    h.duration)
        else:
            for onset, length, q in ((0, 1.5, p), (1.5, 1, fifth), (3, 0.5, p), (3.5, 0.5, p + 12)):
                add(notes, t0 + onset * beat, length * beat * 0.9, in_range(q, low, high), vel,
                    h.duration)


# General MIDI drum notes.
KICK, SNARE, HAT, OPEN_HAT, RIDE, CRASH, TOM_LO, TOM_HI, CLAP = 36, 38, 42, 46, 51, 49, 45, 48, 39
DRUM_STYLES = {  # per sixteenth of a bar: which instruments strike
    "rock": {KICK: [0, 8, 10], SNARE: [4, 12], HAT: range(0, 16, 2)},
    "disco": {KICK: [0, 4, 8, 12], SNARE: [4, 12], OPEN_HAT: [2, 6, 10, 14], HAT: [0, 4, 8, 12]},
    "funk": {KICK: [0, 3, 10], SNARE: [4, 7, 12], HAT: range(16)},
    "shuffle": {KICK: [0, 9], SNARE: [4, 12], RIDE: [0, 3, 4, 7, 8, 11, 12, 15]},
    "halftime": {KICK: [0, 6], SNARE: [8], HAT: range(0, 16, 2), CLAP: [8]},
    "toms": {KICK: [0, 8], TOM_LO: [6, 14], TOM_HI: [4, 12], HAT: range(0, 16, 4)},
}


def drums(rng, h, family, notes, avoid=None):
    style = str(rng.choice([s for s in sorted(DRUM_STYLES) if s != avoid]))
    six = h.bar / 16
    for bar, t0 in h.bars():
        pattern = DRUM_STYLES[style]
        for pitch, steps in pattern.items():
            for s in steps:
                vel = rng.integers(70, 120) if s % 4 == 0 else rng.integers(50, 95)
                add(notes, t0 + s * six, six * 0.9, pitch, vel, h.duration)
        if bar % 4 == 0:
            add(notes, t0, six, CRASH, rng.integers(80, 110), h.duration)
    return style


WRITERS = {"melody": melody, "comp": comp, "chords": chords, "bass": bass, "drums": drums}


def part_midi(h, notes, program, is_drum, pan, end):
    pm = pretty_midi.PrettyMIDI(initial_tempo=h.tempo)
    # On the drum channel the program selects the kit (FluidSynth's bank 128).
    inst = pretty_midi.Instrument(program=program, is_drum=is_drum)
    inst.notes = sorted(notes, key=lambda n: (n.start, n.pitch))
    inst.control_changes.append(pretty_midi.ControlChange(10, int(pan), 0.0))
    inst.control_changes.append(pretty_midi.ControlChange(7, 100, 0.0))
    # A last event keeps FluidSynth rendering until every release has died away.
    inst.control_changes.append(pretty_midi.ControlChange(11, 127, end + 1.5))
    pm.instruments.append(inst)
    return pm


def render(pm, soundfont, seconds, workdir):
    """Render one part alone with FluidSynth (reverb and chorus off) to float64 stereo."""
    mid, wav = workdir / "part.mid", workdir / "part.wav"
    pm.write(str(mid))
    subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5",
                    "-r", str(SR), "-O", "float", "-T", "wav", "-F", str(wav),
                    soundfont, str(mid)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    audio, sr = sf.read(str(wav), dtype="float64", always_2d=True)
    assert sr == SR, sr
    n = int(round(seconds * SR))
    out = np.zeros((n, 2))
    out[: min(n, len(audio))] = audio[:n, :2]
    return out


def room(rng):
    """A stereo room impulse response: direct sound, early reflections and a decaying tail
    whose energy lies 2 to 10 dB below the direct sound's (a moderately wet mix)."""
    rt60 = rng.uniform(0.4, 1.6)
    drr_db = rng.uniform(2, 10)
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    ir = np.zeros((n, 2))
    ir[0] = 1.0
    for c in range(2):
        for _ in range(8):
            i = int(rng.uniform(0.004, 0.05) * SR)
            ir[i, c] += rng.uniform(-0.3, 0.3)
        tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
        tail[: int(0.01 * SR)] = 0
        lp = scipy.signal.butter(1, rng.uniform(3000, 9000), fs=SR, output="sos")
        tail = scipy.signal.sosfilt(lp, tail)
        ir[:, c] += tail * np.sqrt(10 ** (-drr_db / 10) / (tail ** 2).sum())
    return ir, float(rt60)


def apply_room(audio, ir):
    return np.stack([scipy.signal.fftconvolve(audio[:, c], ir[:, c])[: len(audio)]
                     for c in range(2)], axis=1)


def quantize(x):
    """Round to 24-bit steps, as the FLAC file will store them."""
    return np.round(x * 2 ** 23) / 2 ** 23


def pick_sources(rng, n):
    roles = ["melody", "bass"] + list(rng.permutation(["comp", "chords", "drums"]))
    if rng.random() < 0.35:  # some songs without bass
        roles = ["melody"] + list(rng.permutation(["comp", "chords", "drums", "bass"]))
    roles = roles[:n]
    sources, used = [], set()
    for role in roles:
        choices = [f for f in ROLES[role] if f not in used]
        family = str(rng.choice(choices))
        used.add(family)
        program = int(rng.choice(FAMILIES[family]))
        sources.append(dict(name=family if family != "drums" else "drums", role=role,
                            family=family, program=program))
    return sources


def song(split, index, seed, out_root, workdir):
    rng = rng_for(seed, split, "song", index)
    n_sources = int(rng.choice([2, 2, 3, 3, 3, 4]))
    sources = pick_sources(rng, n_sources)
    font = "TimGM6mb" if split == "validation" and index % 3 == 2 else "FluidR3"
    reverb = bool(index % 2)  # half the songs in a room, half dry
    name = f"{split[:3]}{index:03d}_" + "_".join(s["name"] for s in sources)
    folder = out_root / split / "songs" / name
    if (folder / "meta.json").exists():
        return json.loads((folder / "meta.json").read_text())
    tmp_folder = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp_folder, ignore_errors=True)
    (tmp_folder / "train").mkdir(parents=True)
    ir, rt60 = room(rng) if reverb else (None, 0.0)
    pieces = {"song": (Harmony(rng, SONG_S), SONG_S), "train": (Harmony(rng, TRAIN_S), TRAIN_S)}
    while pieces["train"][0].tempo == pieces["song"][0].tempo:
        pieces["train"] = (Harmony(rng, TRAIN_S), TRAIN_S)
    stems, train, meta_sources = {}, {}, []
    whole = pretty_midi.PrettyMIDI(initial_tempo=pieces["song"][0].tempo)
    for s in sources:
        pan = int(rng.integers(20, 108))
        gain_db = float(rng.uniform(-6, 6))
        info = dict(s, pan=pan, gain_db=gain_db)
        for which, (h, seconds) in pieces.items():
            notes = []
            if s["role"] == "drums":  # the training clip plays another pattern
                style = drums(rng, h, s["family"], notes, avoid=info.get("song_style"))
            else:
                style = WRITERS[s["role"]](rng, h, s["family"], notes)
            is_drum = s["family"] == "drums"
            pm = part_midi(h, notes, s["program"], is_drum, pan, seconds)
            audio = render(pm, SOUNDFONTS[font], seconds, workdir)
            if not np.abs(audio).max() > 1e-4:
                raise RuntimeError(f"{name}: {s} rendered silence with {font}")
            if ir is not None:
                audio = apply_room(audio, ir)
            if which == "song":  # equal loudness (RMS), then the source's own level
                audio *= 10 ** ((gain_db - 20) / 20) / np.sqrt((audio ** 2).mean())
            target = stems if which == "song" else train
            target[s["name"]] = audio
            sub = "" if which == "song" else "train/"
            pm.write(str(tmp_folder / f"{sub}{s['name']}.mid"))
            info[f"{which}_notes"] = len(notes)
            if style:
                info[f"{which}_style"] = str(style)
            if which == "song":
                whole.instruments += pm.instruments
        meta_sources.append(info)
    peak = np.abs(sum(stems.values())).max()
    scale = 0.89 / max(peak, 1e-9)
    stems = {k: quantize(v * scale) for k, v in stems.items()}
    mix = sum(stems.values())
    assert max(np.abs(v).max() for v in stems.values()) < 1.0, "a stem would clip"
    for k, v in stems.items():
        sf.write(str(tmp_folder / f"{k}.flac"), v, SR, subtype="PCM_24")
    sf.write(str(tmp_folder / "mix.flac"), mix, SR, subtype="PCM_24")
    for k, v in train.items():
        v = quantize(v * 0.89 / max(np.abs(v).max(), 1e-9))
        sf.write(str(tmp_folder / "train" / f"{k}.flac"), v, SR, subtype="PCM_24")
    whole.write(str(tmp_folder / "song.mid"))
    meta = dict(song=name, split=split, sources=[s["name"] for s in sources],
                families={s["name"]: s["family"] for s in sources},
                programs={s["name"]: s["program"] for s in sources}, soundfont=font,
                reverb_rt60=rt60, sr=SR, channels=2, duration=SONG_S, details=meta_sources,
                harmony={k: h.describe() for k, (h, _) in pieces.items()},
                global_scale=float(scale), seed=[seed, split, index])
    (tmp_folder / "meta.json").write_text(json.dumps(meta, indent=1))
    tmp_folder.rename(folder)
    return meta


def solo(split, index, seed, out_root, workdir):
    rng = rng_for(seed, split, "solo", index)
    instruments = sorted(SOLO_PROGRAMS)
    # Every other piece is piano; the rest cycle through the other instruments.
    inst = "piano" if index % 2 == 0 else [i for i in instruments if i != "piano"][(index // 2) % 4]
    font = "TimGM6mb" if split == "validation" and index % 3 == 2 else "FluidR3"
    reverb = index % 4 == 3
    name = f"{split[:3]}solo{index:02d}_{inst}"
    folder = out_root / split / "solo" / name
    if (folder / "meta.json").exists() and (folder / "train.flac").exists():
        return json.loads((folder / "meta.json").read_text())
    tmp_folder = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp_folder, ignore_errors=True)
    tmp_folder.mkdir(parents=True)
    h = Harmony(rng, SOLO_S)
    family = "keys" if inst in ("piano", "epiano") else "mallets" if inst == "marimba" else "plucked"
    notes = []
    melody(rng, h, family, notes)
    accompaniment = []
    comp(rng, h, family, accompaniment)
    low = RANGES[family][0]
    for n in accompaniment:  # the accompaniment an octave below, where the range allows it
        if n.pitch - 12 >= max(low - 12, 28):
            n.pitch -= 12
    notes += accompaniment
    # One sounding note per pitch at a time: a repeated pitch cuts the previous one short.
    notes.sort(key=lambda n: (n.pitch, n.start))
    notes = [b for a, b in zip([None] + notes, notes)  # and two onsets of one pitch are one
             if a is None or a.pitch != b.pitch or b.start - a.start >= 0.05]
    for a, b in zip(notes, notes[1:]):
        if a.pitch == b.pitch and a.end > b.start - 0.01:
            a.end = max(a.start + 0.03, b.start - 0.01)
    program = SOLO_PROGRAMS[inst]
    pm = part_midi(h, notes, program, False, 64, SOLO_S)
    audio = render(pm, SOUNDFONTS[font], SOLO_S, workdir)
    rt60, ir = 0.0, None
    if reverb:
        ir, rt60 = room(rng)
        audio = apply_room(audio, ir)
    audio = quantize(audio * 0.89 / max(np.abs(audio).max(), 1e-9))
    sf.write(str(tmp_folder / "mix.flac"), audio, SR, subtype="PCM_24")
    pm.write(str(tmp_folder / "notes.mid"))
    # The training clip draws from the generator only after the piece is made, so adding it
    # left every piece as it was.
    train_notes, train_s = [], 1.0
    for pitch in range(max(low - 12, 28), RANGES[family][1] + 1):
        add(train_notes, train_s - 0.5, 0.5, pitch, rng.integers(60, 111), np.inf)
        train_s += SOLO_TRAIN_STEP_S
    pm = part_midi(h, train_notes, program, False, 64, train_s)
    train = render(pm, SOUNDFONTS[font], train_s, workdir)
    if ir is not None:
        train = apply_room(train, ir)
    train = quantize(train * 0.89 / max(np.abs(train).max(), 1e-9))
    sf.write(str(tmp_folder / "train.flac"), train, SR, subtype="PCM_24")
    pm.write(str(tmp_folder / "train.mid"))
    meta = dict(piece=name, split=split, instrument=inst, program=program, soundfont=font,
                reverb_rt60=rt60, n_notes=len(notes), harmony=h.describe(), sr=SR,
                duration=SOLO_S, seed=[seed, split, index],
                train=dict(notes=len(train_notes), low=train_notes[0].pitch,
                           high=train_notes[-1].pitch, duration=train_s))
    (tmp_folder / "meta.json").write_text(json.dumps(meta, indent=1))
    if folder.exists():  # a piece made before training clips existed: replaced whole
        old = folder.with_name(folder.name + ".old")
        folder.rename(old)
        tmp_folder.rename(folder)
        shutil.rmtree(old)
    else:
        tmp_folder.rename(folder)
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", type=Path, required=True, help="corpus folder")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--songs", type=int, default=40, help="songs per split")
    ap.add_argument("--solo", type=int, default=None,
                    help="solo pieces per split (default: 10 tuning, 12 validation)")
    ap.add_argument("--splits", default="tuning,validation")
    ap.add_argument("--first", type=int, default=0,
                    help="index of the first song and solo piece: a further part of a split "
                         "(its own folder, its own index.json), e.g. --first 40 --songs 40")
    args = ap.parse_args()
    for font in SOUNDFONTS.values():
        if not os.path.exists(font):
            sys.exit(f"make_corpus: {font} is missing (apt-get install fluid-soundfont-gm "
                     "timgm6mb-soundfont)")
    if shutil.which("fluidsynth") is None:
        sys.exit("make_corpus: fluidsynth is missing (apt-get install fluidsynth)")
    for split in args.splits.split(","):
        n_solo = args.solo if args.solo is not None else (10 if split == "tuning" else 12)
        with tempfile.TemporaryDirectory() as tmp:
            first = args.first
            songs = [song(split, i, args.seed, args.out, Path(tmp))
                     for i in range(first, first + args.songs)]
            pieces = [solo(split, i, args.seed, args.out, Path(tmp))
                      for i in range(first, first + n_solo)]
        index = dict(split=split, seed=args.seed,
                     songs=[dict(name=m["song"], sources=m["sources"], families=m["families"],
                                 soundfont=m["soundfont"], reverb=m["reverb_rt60"] > 0)
                            for m in songs],
                     solo=[dict(name=m["piece"], instrument=m["instrument"],
                                soundfont=m["soundfont"], reverb=m["reverb_rt60"] > 0)
                           for m in pieces])
        (args.out / split / "index.json").write_text(json.dumps(index, indent=1))
        programs = sorted({(s["family"], s["program"]) for m in songs for s in m["details"]})
        print(f"{split}: {len(songs)} songs, {len(pieces)} solo pieces, "
              f"{len(programs)} programs in {len({f for f, _ in programs})} families")


if __name__ == "__main__":
    main()
