//! What the separated sources are: learned [`Templates`] of named sources, the grouping of
//! free components into sources by timbre, and the names of the output files.

use crate::error::ParamError;
#[cfg(doc)]
use crate::nmf::Nmf;

mod file;
mod group;
mod model;
mod percussion;
mod shift;
mod templates;

pub(crate) use group::group_components;
pub use model::{LearnEvent, Learned, ModelChoice, learn_source};
pub use percussion::{PERCUSSIVE_BOUND, PERCUSSIVE_FRAMES, Percussion};
pub use shift::{
    DEFAULT_PITCH_SHIFTS, DEFAULT_SHIFT_PENALTY, FREE_SHIFTS, MAX_PITCH_SHIFTS, MAX_SHIFT_PENALTY,
    pitch_shifted, shift_handicaps,
};
pub use templates::{
    DEFAULT_TEMPLATES, LEARN_ITERATIONS, LEARN_STEP_EXPONENT, Templates, learn, learn_params,
    learn_with_rank, mix_loss, percussion,
};
pub(crate) use templates::{pooled_spectrogram, stack, templates_of, with_stacked};

/// Name of the source made of the free components next to learned templates.
pub const OTHER: &str = "other";

/// Refuses names that cannot be used as a file name on every platform.
pub(crate) fn check_source_name(name: &str) -> Result<(), ParamError> {
    let reason = if name.is_empty() {
        Some("is empty")
    } else if name.starts_with('.') {
        Some("starts with a dot")
    } else if name.chars().any(|c| {
        matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control()
    }) {
        Some("contains a character that is not allowed in file names")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ParamError::SourceName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// One output source: a name and the NMF components whose models it sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// File name without extension, e.g. `source1`.
    pub name: String,
    /// Indices of the components (columns of W) that make up this source.
    pub components: Vec<usize>,
}

/// One source per template set, in order, then `other` for the free components.
pub(crate) fn named_sources(templates: &[Templates], free: usize) -> Vec<Source> {
    let columns: Vec<usize> = templates.iter().map(Templates::len).collect();
    let next = columns.iter().sum::<usize>();
    let mut sources: Vec<Source> = (templates.iter())
        .zip(crate::nmf::template_columns(&columns))
        .map(|(t, components)| Source {
            name: t.name.clone(),
            components: components.collect(),
        })
        .collect();
    if free > 0 {
        sources.push(Source {
            name: OTHER.to_string(),
            components: (next..next + free).collect(),
        });
    }
    sources
}

/// One source per component, loudest first by the components' `energies` (see
/// [`Nmf::component_energies`]).
pub(crate) fn one_source_per_component(energies: &[f64]) -> Vec<Source> {
    let singles = (0..energies.len()).map(|c| vec![c]).collect();
    sources_loudest_first(singles, energies)
}

/// Sources of the given groups of components, loudest first (by the summed `energy` of their
/// components; ties by component numbers), named `source1`, `source2`, ...
pub(crate) fn sources_loudest_first(mut members: Vec<Vec<usize>>, energy: &[f64]) -> Vec<Source> {
    let total = |m: &Vec<usize>| m.iter().map(|&c| energy[c]).sum::<f64>();
    members.sort_by(|a, b| total(b).total_cmp(&total(a)).then(a.cmp(b)));
    let width = members.len().to_string().len();
    members
        .into_iter()
        .enumerate()
        .map(|(i, components)| Source {
            name: format!("source{:0width$}", i + 1),
            components,
        })
        .collect()
}
