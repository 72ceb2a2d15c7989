//! Keys through `#[cached_query]`: distinct arguments never get one another's cached
//! result, and a key template filled with any text never fails or panics the call.

use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use querycache::{Cache, Key, cached_query};

use super::{cases, runtime};

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);

/// What a call computes: its arguments, as only these arguments print.
#[cached_query(cache = *CACHE)]
async fn describe(x: Option<f64>, y: Option<Option<i32>>, z: (f32, String)) -> String {
    format!("{x:?} {y:?} {z:?}")
}

#[cached_query(cache = *CACHE, key = "hostile:echo:{text}")]
async fn echo(text: String) -> String {
    text
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
        ]),
        any::<f64>(),
    ]
}

#[test]
fn distinct_arguments_never_get_each_others_result() {
    let runtime = runtime();
    let args = (
        proptest::option::of(float()),
        proptest::option::of(proptest::option::of(prop::sample::select(vec![
            0,
            -1,
            i32::MIN,
        ]))),
        (
            float().prop_map(|f| f as f32),
            prop::sample::select(vec!["", "null", "NaN", "?null", "\u{0}"]).prop_map(str::to_owned),
        ),
    );
    let mut runner = TestRunner::new(cases(256));
    runner
        .run(&proptest::collection::vec(args, 1..12), |batch| {
            runtime.block_on(async {
                // Twice over: the second round is served from the cache.
                for _ in 0..2 {
                    for (x, y, z) in &batch {
                        let expected = format!("{x:?} {y:?} {z:?}");
                        let got = describe(*x, *y, z.clone()).await;
                        prop_assert_eq!(got, expected, "another call's result");
                    }
                }
                Ok(())
            })
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

#[test]
fn key_templates_take_any_text() {
    let runtime = runtime();
    let text = prop_oneof![
        "\\PC{0,40}",
        ".{0,40}",
        "[{}:*?\\[\\]\\\\\u{0}-\u{1f}\u{7f}-\u{a0}]{0,12}",
        (4000..4200_usize).prop_map(|n| "t".repeat(n)),
    ];
    let mut runner = TestRunner::new(cases(512));
    runner
        .run(&text, |text| {
            runtime.block_on(async {
                // Any text: the call answers with its own result; it is cached exactly when
                // the filled template is a valid key (else the call runs uncached).
                prop_assert_eq!(echo(text.clone()).await, text.clone());
                prop_assert_eq!(echo(text.clone()).await, text.clone());
                let key = format!("hostile:echo:{text}");
                let cached = CACHE.get::<String>(&key).await;
                prop_assert_eq!(cached.is_some(), Key::new(&key).is_ok(), "{:?}", key);
                if let Some(cached) = cached {
                    prop_assert_eq!(&*cached, &text);
                }
                Ok(())
            })
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}
