//! File formats that are not audio: NumPy `.npy`/`.npz` (templates, factors), standard MIDI
//! files (notes) and PNG charts.

pub mod midi;
pub mod npy;
pub mod plot;
