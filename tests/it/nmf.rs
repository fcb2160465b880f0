//! NMF engine: the cost never rises, exact low-rank data is fitted, degenerate data stays
//! finite, fixed templates stay fixed, results do not depend on the number of threads.

use demix::ParamError;
use demix::nmf::{CostPoint, Factorization, Init, Loss, Nmf, NmfParams, fit};
use demix::spectral::{Stft, StftParams};
use ndarray::{Array2, s};

use crate::alloc::allocations;
use crate::common::TestRng;

fn random_matrix(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mut rng = TestRng::new(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.uniform() as f32)
}

/// The magnitude spectrogram (bins × frames) of the first two seconds of the shipped sample.
fn audio_spectrogram() -> Array2<f32> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/mix.flac");
    let audio = demix::audio::read_audio(path).expect("the shipped sample decodes");
    let left = &audio.channels[0][..2 * audio.sample_rate as usize];
    let stft = Stft::new(&StftParams::new(1024)).unwrap();
    stft.magnitude(left).reversed_axes()
}

const LOSSES: [Loss; 5] = [
    Loss::ItakuraSaito,
    Loss::KullbackLeibler,
    Loss::Euclidean,
    Loss::Beta(0.5),
    Loss::Beta(3.0),
];

/// Every recorded cost is at most the one before, up to f32 rounding of the model: 1e-6
/// relative, plus 1e-13 per element, the divergence between f32 values a few units in the last
/// place apart (what is left once a model fits its data exactly, as for all-zero data).
fn assert_never_rises(history: &[CostPoint], elements: usize, what: &str) {
    for pair in history.windows(2) {
        let (a, b) = (pair[0].cost, pair[1].cost);
        assert!(
            b <= a + 1e-6 * a.abs() + 1e-13 * elements as f64,
            "{what}: cost rose from {a} to {b} at iteration {}",
            pair[1].iteration
        );
    }
}

#[test]
fn cost_never_rises_on_random_data() {
    let v = random_matrix(60, 90, 1);
    for loss in LOSSES {
        for init in [Init::Nndsvda, Init::Random] {
            let params = NmfParams::new(5)
                .with_loss(loss)
                .with_init(init)
                .with_max_iter(200)
                .with_tol(0.0)
                .with_cost_every(1);
            let model = fit(v.view(), &params).unwrap();
            assert_eq!(model.cost_history.len(), 201);
            assert_never_rises(&model.cost_history, v.len(), &format!("{loss} {init:?}"));
            let first = model.cost_history[0].cost;
            assert!(model.final_cost() < 0.9 * first, "{loss}: barely moved");
        }
    }
}

#[test]
fn cost_never_rises_on_an_audio_spectrogram() {
    let v = audio_spectrogram();
    for loss in LOSSES {
        let params = NmfParams::new(8)
            .with_loss(loss)
            .with_max_iter(200)
            .with_tol(0.0)
            .with_cost_every(1);
        let model = fit(v.view(), &params).unwrap();
        assert_never_rises(&model.cost_history, v.len(), &loss.to_string());
        assert!(
            model
                .w
                .iter()
                .chain(model.h.iter())
                .all(|&a| a >= 0.0 && a.is_finite())
        );
    }
}

#[test]
fn an_exactly_low_rank_matrix_is_fitted_to_near_zero_cost() {
    let w0 = random_matrix(40, 3, 2).mapv(|a| a + 0.1);
    let h0 = random_matrix(3, 70, 3).mapv(|a| a + 0.1);
    let v = w0.dot(&h0);
    // The cost of the mean as the model, for scale.
    let mean = v.mean().unwrap();
    for loss in [Loss::ItakuraSaito, Loss::KullbackLeibler, Loss::Euclidean] {
        let params = NmfParams::new(3)
            .with_loss(loss)
            .with_max_iter(3000)
            .with_tol(0.0);
        let model = fit(v.view(), &params).unwrap();
        let baseline = fit(
            v.view(),
            &NmfParams::new(3)
                .with_loss(loss)
                .with_max_iter(0)
                .with_initial(
                    Array2::from_elem((40, 3), 1.0),
                    Array2::from_elem((3, 70), mean / 3.0),
                ),
        )
        .unwrap()
        .final_cost();
        let relative = model.final_cost() / baseline;
        assert!(relative < 1e-4, "{loss}: cost {:e} of baseline", relative);
        let approx = model.w.dot(&model.h);
        let err = (&approx - &v).mapv(f32::abs).fold(0f32, |m, &a| m.max(a));
        assert!(
            err < 0.02 * v.fold(0f32, |m, &a| m.max(a)),
            "{loss}: max error {err}"
        );
    }
}

#[test]
fn zeros_silent_frames_and_all_zero_input_stay_finite() {
    let mut v = random_matrix(30, 50, 4);
    v.slice_mut(s![.., 10..20]).fill(0.0); // silent frames
    v.slice_mut(s![5..8, ..]).fill(0.0); // empty bins
    let zero = Array2::<f32>::zeros((30, 50));
    for loss in LOSSES {
        for data in [&v, &zero] {
            let params = NmfParams::new(4)
                .with_loss(loss)
                .with_max_iter(100)
                .with_cost_every(1);
            let model = fit(data.view(), &params).unwrap();
            assert!(
                model
                    .w
                    .iter()
                    .chain(model.h.iter())
                    .all(|a| a.is_finite() && *a >= 0.0),
                "{loss}: non-finite factors"
            );
            assert!(
                model.cost_history.iter().all(|c| c.cost.is_finite()),
                "{loss}: cost"
            );
            assert_never_rises(&model.cost_history, v.len(), &loss.to_string());
        }
    }
}

#[test]
fn the_floor_is_the_same_as_raising_small_values_by_hand() {
    // Values spanning ten decades; the floor raises those below 1e-3 of the largest.
    let mut v = random_matrix(40, 60, 7);
    v.indexed_iter_mut()
        .for_each(|((f, t), a)| *a *= 10f32.powi(-(((f * 7 + t * 3) % 11) as i32)));
    let largest = v.iter().copied().fold(0.0, f32::max);
    let raised = v.mapv(|a| a.max(1e-3 * largest));
    let params = NmfParams::new(3)
        .with_loss(Loss::ItakuraSaito)
        .with_max_iter(10)
        .with_tol(0.0);
    let floored = fit(v.view(), &params.clone().with_floor(1e-3)).unwrap();
    let by_hand = fit(raised.view(), &params.clone().with_floor(0.0)).unwrap();
    let unfloored = fit(v.view(), &params.with_floor(0.0)).unwrap();
    // The largest difference, relative to the largest value (each template sums to 1).
    let diff = |a: &Array2<f32>, b: &Array2<f32>| {
        let peak = b.iter().copied().fold(0.0, f32::max);
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
            / peak
    };
    // The two differ only by rounding (the data is scaled by a different mean), far less
    // than either differs from the fit without the floor.
    let (same, apart) = (diff(&floored.w, &by_hand.w), diff(&floored.w, &unfloored.w));
    assert!(apart > 1e-2, "the floor changed nothing: {apart}");
    assert!(
        same < 0.1 * apart,
        "floored vs by hand {same}, vs no floor {apart}"
    );
}

#[test]
fn a_floor_outside_zero_to_one_is_rejected() {
    for bad in [-0.1, 1.0, f32::NAN] {
        let err = fit(
            random_matrix(4, 4, 1).view(),
            &NmfParams::new(1).with_floor(bad),
        );
        assert!(
            matches!(
                err,
                Err(ParamError::OutOfRange {
                    param: demix::error::Param::Floor,
                    ..
                })
            ),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn fixed_templates_stay_fixed_and_free_ones_are_normalised() {
    let v = random_matrix(20, 40, 5);
    let fixed = random_matrix(20, 2, 6);
    let params = NmfParams::new(1)
        .with_fixed_templates(fixed.clone())
        .with_max_iter(50)
        .with_cost_every(1);
    let model = fit(v.view(), &params).unwrap();
    assert_eq!(model.w.dim(), (20, 3));
    assert_eq!(model.h.dim(), (3, 40));
    assert_eq!(model.w.slice(s![.., ..2]), fixed);
    let free_sum: f32 = model.w.column(2).sum();
    assert!((free_sum - 1.0).abs() < 1e-5);
    assert_never_rises(&model.cost_history, v.len(), "semi-supervised");

    // Only H: every template fixed.
    let model = fit(
        v.view(),
        &NmfParams::new(0)
            .with_fixed_templates(fixed.clone())
            .with_cost_every(1),
    )
    .unwrap();
    assert_eq!(model.w, fixed);
    assert_never_rises(&model.cost_history, v.len(), "H only");
    assert!(model.final_cost() < model.cost_history[0].cost);
}

#[test]
fn normalisation_leaves_the_product_unchanged() {
    let v = random_matrix(25, 30, 7);
    let w0 = random_matrix(25, 3, 8).mapv(|a| a + 0.5);
    let h0 = random_matrix(3, 30, 9).mapv(|a| a + 0.5);
    let fit_with = |normalize| {
        fit(
            v.view(),
            &NmfParams::new(3)
                .with_max_iter(1)
                .with_normalize(normalize)
                .with_initial(w0.clone(), h0.clone()),
        )
        .unwrap()
    };
    let (plain, normalised) = (fit_with(false), fit_with(true));
    for j in 0..3 {
        assert!((normalised.w.column(j).sum() - 1.0).abs() < 1e-5);
    }
    let a = plain.w.dot(&plain.h);
    let b = normalised.w.dot(&normalised.h);
    let err = (&a - &b).mapv(f32::abs).fold(0f32, |m, &x| m.max(x));
    assert!(
        err < 1e-4 * a.fold(0f32, |m, &x| m.max(x)),
        "max difference {err}"
    );
}

#[test]
fn tolerance_stops_early_and_records_the_final_cost() {
    let v = random_matrix(40, 60, 10);
    let model = fit(
        v.view(),
        &NmfParams::new(4).with_tol(1e-2).with_max_iter(500),
    )
    .unwrap();
    assert!(model.converged);
    assert!(model.iterations < 500);
    assert_eq!(
        model.iterations % 10,
        0,
        "the tolerance is checked every 10 iterations"
    );
    assert_eq!(
        model.cost_history.last().unwrap().iteration,
        model.iterations
    );

    let model = fit(v.view(), &NmfParams::new(4).with_tol(0.0).with_max_iter(37)).unwrap();
    assert!(!model.converged);
    assert_eq!(model.iterations, 37);
    let recorded: Vec<usize> = model.cost_history.iter().map(|c| c.iteration).collect();
    assert_eq!(recorded, vec![0, 10, 20, 30, 37]);
}

#[test]
fn iterations_allocate_nothing() {
    let v = random_matrix(129, 1500, 12);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for loss in LOSSES {
        for params in [
            NmfParams::new(6),
            NmfParams::new(6).with_sparsity(0.1).with_smoothness(0.1),
        ] {
            let params = params.with_loss(loss).with_init(Init::Random);
            // On the pool's one thread, where the allocations are counted.
            let count = pool.install(|| {
                let mut f = Factorization::new(v.view(), &params).unwrap();
                // The first step may meet a thread's one-time set-up (faer's workspace).
                f.step();
                allocations(|| (0..5).for_each(|_| f.step())).1
            });
            assert_eq!(count, 0, "{loss} {params:?}");
        }
    }
}

fn fit_in_pool(threads: usize, v: &Array2<f32>, params: &NmfParams) -> Nmf {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| fit(v.view(), params).unwrap())
}

#[test]
fn results_are_bit_identical_with_one_and_two_threads() {
    // Enough frames for many blocks, so the blocks really run in parallel.
    let v = random_matrix(129, 1500, 11);
    for loss in LOSSES {
        for init in [Init::Nndsvda, Init::Random] {
            let params = NmfParams::new(6)
                .with_loss(loss)
                .with_init(init)
                .with_max_iter(20);
            let one = fit_in_pool(1, &v, &params);
            let two = fit_in_pool(2, &v, &params);
            let three = fit_in_pool(3, &v, &params);
            assert_eq!(one, two, "{loss} {init:?}");
            assert_eq!(one, three, "{loss} {init:?}");
        }
    }
}

#[test]
fn how_often_the_cost_is_computed_does_not_change_the_factors() {
    let v = random_matrix(129, 700, 13);
    for loss in LOSSES {
        let params = |every| {
            NmfParams::new(5)
                .with_loss(loss)
                .with_init(Init::Random)
                .with_max_iter(12)
                .with_tol(0.0)
                .with_cost_every(every)
        };
        let (often, rarely) = (
            fit(v.view(), &params(1)).unwrap(),
            fit(v.view(), &params(7)).unwrap(),
        );
        assert_eq!((often.w, often.h), (rarely.w, rarely.h), "{loss}");
        // And the costs both recorded are the same.
        assert_eq!(often.cost_history[7], rarely.cost_history[1], "{loss}");
    }
}

#[test]
fn fixed_templates_stopped_by_the_tolerance_keep_the_activations_of_their_last_cost() {
    // The cost of fixed templates is summed in the sweep of the next H update, which runs
    // beside it; the fit that stops on that cost must return the activations it was of.
    let v = random_matrix(129, 700, 14);
    let w = random_matrix(129, 5, 15);
    for loss in LOSSES {
        let params = NmfParams::new(0)
            .with_fixed_templates(w.clone())
            .with_loss(loss)
            .with_max_iter(500);
        let stopped = fit(v.view(), &params.clone().with_tol(1e-3)).unwrap();
        assert!(stopped.converged && stopped.iterations < 500, "{loss}");
        let exact = params.with_tol(0.0).with_max_iter(stopped.iterations);
        let counted = fit(v.view(), &exact).unwrap();
        assert_eq!(stopped.h, counted.h, "{loss}");
        // The same costs (the last one of the counted fit from a pass of its own, so equal to
        // rounding).
        assert_eq!(
            stopped.cost_history.len(),
            counted.cost_history.len(),
            "{loss}"
        );
        for (a, b) in stopped.cost_history.iter().zip(&counted.cost_history) {
            assert_eq!(a.iteration, b.iteration, "{loss}");
            assert!(
                (a.cost - b.cost).abs() <= 1e-9 * b.cost,
                "{loss}: {a:?} {b:?}"
            );
        }
        // And the costs recorded are those of the factors: every 1 and every 7 agree.
        let every = |n| fit(v.view(), &exact.clone().with_cost_every(n)).unwrap();
        let (often, rarely) = (every(1), every(7));
        assert_eq!(often.h, counted.h, "{loss}");
        assert_eq!(often.cost_history[7], rarely.cost_history[1], "{loss}");
        assert_eq!(often.cost_history[14], rarely.cost_history[2], "{loss}");
    }
}

#[test]
fn longer_steps_that_raise_the_cost_go_back_and_take_the_losses_own() {
    // Steps of exponent 2 overshoot on peaked templates (harmonic combs) and activations that
    // come and go, as in music. The fit goes back to the activations of the last cost it
    // recorded and takes the loss's own steps from there: the rise is not recorded (one check
    // fewer), the recorded costs never rise, and the fit ends below its start.
    let comb = |k: usize, f: usize| {
        let near = (1..6).any(|n| f.abs_diff(n * (6 + 3 * k)) <= 1);
        if near { 1.0 } else { 1e-3 }
    };
    let w = Array2::from_shape_fn((129, 8), |(f, k)| comb(k, f));
    let mut rng = TestRng::new(21);
    let h = Array2::from_shape_fn((8, 300), |(k, t)| {
        let on = (t / 25 + k) % 3 == 0;
        if on { 1.0 + rng.uniform() as f32 } else { 1e-4 }
    });
    let v = w.dot(&h);
    // Itakura-Saito: the same data does not make KL's steps of 2 overshoot (the going back is
    // the same code for every loss).
    let params = NmfParams::new(0)
        .with_fixed_templates(w)
        .with_loss(Loss::ItakuraSaito)
        .with_max_iter(100)
        .with_tol(0.0);
    let long = fit(v.view(), &params.clone().with_step_exponent(Some(2.0))).unwrap();
    let costs: Vec<f64> = long.cost_history.iter().map(|c| c.cost).collect();
    assert_eq!(long.iterations, 100);
    assert!(
        costs.len() < 11,
        "no check found the cost higher: {costs:?}"
    );
    assert!(costs.windows(2).all(|p| p[1] <= p[0]), "{costs:?}");
    assert!(costs[costs.len() - 1] < costs[0], "{costs:?}");
    // Where the longer steps do not overshoot, every check is recorded.
    let fine = fit(v.view(), &params.with_step_exponent(Some(1.25))).unwrap();
    assert_eq!(fine.cost_history.len(), 11);
}

#[test]
fn the_seed_decides_the_random_start() {
    let v = random_matrix(30, 40, 12);
    let params = |seed| {
        NmfParams::new(3)
            .with_init(Init::Random)
            .with_seed(seed)
            .with_max_iter(5)
    };
    let a = fit(v.view(), &params(1)).unwrap();
    assert_eq!(a, fit(v.view(), &params(1)).unwrap());
    assert_ne!(a.w, fit(v.view(), &params(2)).unwrap().w);
}

#[test]
fn zero_components_are_rejected() {
    let v = random_matrix(10, 10, 13);
    assert_eq!(
        fit(v.view(), &NmfParams::new(0)).unwrap_err(),
        ParamError::NoComponents(0)
    );
}

#[test]
fn negative_or_nan_data_is_rejected() {
    let mut v = random_matrix(10, 10, 14);
    v[[3, 4]] = -1.0;
    assert_eq!(
        fit(v.view(), &NmfParams::new(2)).unwrap_err(),
        ParamError::NotNonNegative("V")
    );
    v[[3, 4]] = f32::NAN;
    assert_eq!(
        fit(v.view(), &NmfParams::new(2)).unwrap_err(),
        ParamError::NotNonNegative("V")
    );
}

#[test]
fn initial_factors_of_the_wrong_shape_are_rejected() {
    let v = random_matrix(10, 12, 15);
    let params = NmfParams::new(2).with_initial(Array2::ones((10, 3)), Array2::ones((2, 12)));
    assert!(matches!(
        fit(v.view(), &params),
        Err(ParamError::Shape {
            what: "initial W",
            ..
        })
    ));
    let params = NmfParams::new(2).with_fixed_templates(Array2::ones((9, 1)));
    assert!(matches!(
        fit(v.view(), &params),
        Err(ParamError::Shape {
            what: "fixed templates",
            ..
        })
    ));
}

#[test]
fn a_fit_over_its_memory_limit_is_refused_before_allocating() {
    let v = ndarray::Array2::from_shape_fn((64, 100), |(i, j)| 1.0 + ((i * j) % 7) as f32);
    let params = NmfParams::new(3).with_max_memory(Some(1 << 10));
    match fit(v.view(), &params) {
        Err(ParamError::MemoryLimit {
            needs,
            limit,
            components,
            frames,
            bins,
        }) => {
            assert_eq!((limit, components, frames, bins), (1 << 10, 3, 100, 64));
            assert_eq!(needs, demix::nmf::memory_estimate(64, 100, 3, 3));
        }
        other => panic!("{other:?}"),
    }
    // The estimate grows with every dimension, and enough room lets the fit through.
    let e = demix::nmf::memory_estimate;
    assert!(e(64, 100, 3, 3) < e(128, 100, 3, 3));
    assert!(e(64, 100, 3, 3) < e(64, 200, 3, 3));
    assert!(e(64, 100, 3, 3) < e(64, 100, 6, 6));
    assert_eq!(e(1 << 40, 1 << 40, 1 << 40, 1 << 40), u64::MAX);
    // With every template fixed the fit keeps two more copies of the activations: on a long
    // recording they outweigh the free templates' update terms.
    assert!(e(64, 100_000, 3, 0) > e(64, 100_000, 3, 3));
    let roomy = params.with_max_memory(Some(e(64, 100, 3, 3)));
    assert!(fit(v.view(), &roomy).is_ok());
}

#[test]
fn itakura_saito_steps_of_exponent_one_reach_in_25_iterations_the_cost_of_50() {
    // The activations of fixed templates on the shipped sample, as `separate` fits them.
    let v = audio_spectrogram();
    let is = NmfParams::new(6).with_loss(Loss::ItakuraSaito);
    let templates = fit(v.view(), &is.clone().with_max_iter(50)).unwrap().w;
    let base = NmfParams::new(0)
        .with_loss(Loss::ItakuraSaito)
        .with_fixed_templates(templates)
        .with_tol(0.0);
    let run = |p: &NmfParams| fit(v.view(), p).unwrap();
    let cost = |iterations: usize, gamma: Option<f32>| {
        run(&(base.clone())
            .with_max_iter(iterations)
            .with_step_exponent(gamma))
        .final_cost()
    };
    let (heuristic, mm_same, mm_double) = (cost(25, Some(1.0)), cost(25, None), cost(50, None));
    assert!(
        heuristic < mm_same && heuristic <= mm_double,
        "exponent 1 after 25: {heuristic}; exponent 1/2 after 25: {mm_same}, after 50: {mm_double}"
    );
    // The default is the majorisation-minimisation exponent, 1/2 for Itakura-Saito.
    assert_eq!(base.step_exponent(), 0.5);
}

#[test]
fn a_spectrogram_given_transposed_is_fitted_exactly_as_given() {
    let v = audio_spectrogram();
    let params = NmfParams::new(4)
        .with_loss(Loss::ItakuraSaito)
        .with_max_iter(20);
    let direct = fit(v.view(), &params).unwrap();
    let transposed = demix::nmf::fit_transposed(v.t().to_owned(), &params, &mut |_| {}).unwrap();
    assert_eq!(direct.h, transposed.h);
    assert_eq!(direct.w, transposed.w);
}

#[test]
fn a_step_exponent_outside_zero_to_two_is_rejected() {
    for bad in [0.0, -1.0, 2.5, f32::NAN] {
        let err = fit(
            random_matrix(4, 4, 1).view(),
            &NmfParams::new(1).with_step_exponent(Some(bad)),
        );
        assert!(
            matches!(
                err,
                Err(ParamError::OutOfRange {
                    param: demix::error::Param::StepExponent,
                    ..
                })
            ),
            "{bad}: {err:?}"
        );
    }
}
