//! Catching panics from third-party parsers without printing them.
//!
//! `pdf-extract` panics on some malformed files. We catch those panics and turn them into
//! [`super::OcrError::Corrupt`], so the default hook's "thread panicked at ..." output for
//! them is noise (and in Lambda, an alarming line in CloudWatch for an expected outcome).
//!
//! Swapping the process-wide panic hook around each call would race with other threads
//! (a real panic elsewhere could be silenced, or the hook restored in the wrong order). So
//! instead a hook is installed once that consults a *thread-local* flag: while the current
//! thread is inside [`catch`], its panic's location is recorded for the error message and
//! nothing is printed; every other panic, on any thread, goes to the hook that was installed
//! before (the default one, or the application's). The one-time installation is the only
//! global change; if the application later installs its own hook, ours is simply replaced
//! and caught panics are printed again, which is harmless.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many [`catch`] calls are active on this thread (they may nest).
    static ACTIVE: Cell<usize> = const { Cell::new(0) };
    /// Where the last silenced panic on this thread happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL_HOOK: Once = Once::new();

fn install_hook() {
    INSTALL_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let silenced = ACTIVE.try_with(Cell::get).unwrap_or(0) > 0;
            if !silenced {
                previous(info);
                return;
            }
            let location = info.location().map(|l| {
                // Keep `crate-x.y.z/src/file.rs:line:col`, not the registry path.
                let file: Vec<&str> = l.file().rsplit(['/', '\\']).take(3).collect();
                let file: Vec<&str> = file.into_iter().rev().collect();
                format!("{}:{}:{}", file.join("/"), l.line(), l.column())
            });
            let _ = LOCATION.try_with(|slot| {
                if let Ok(mut slot) = slot.try_borrow_mut() {
                    *slot = location;
                }
            });
        }));
    });
}

/// Runs `f`, turning a panic into `Err(message)` (with the panic's location when known)
/// and keeping the panic out of stderr. Only for code that owns all the state it touches:
/// the closure is asserted unwind-safe.
pub(super) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    ACTIVE.with(|active| active.set(active.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    ACTIVE.with(|active| active.set(active.get().saturating_sub(1)));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-text payload".to_string());
        match LOCATION.with(|slot| slot.borrow_mut().take()) {
            Some(location) => format!("{message} (at {location})"),
            None => message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_catch_becomes_an_error_with_its_message_and_location() {
        let result: Result<(), String> = catch(|| panic!("bad xref entry {}", 7));
        let message = result.unwrap_err();
        assert!(message.starts_with("bad xref entry 7 (at "), "{message}");
        assert!(message.contains("quiet.rs:"), "{message}");
    }

    #[test]
    fn catch_returns_the_value_when_nothing_panics_and_leaves_the_flag_clear() {
        assert_eq!(catch(|| 41 + 1), Ok(42));
        let _ = catch(|| panic!("boom"));
        assert_eq!(ACTIVE.with(Cell::get), 0);
    }

    #[test]
    fn nested_catches_each_report_their_own_panic() {
        let outer = catch(|| {
            let inner: Result<(), String> = catch(|| panic!("inner"));
            assert!(inner.unwrap_err().starts_with("inner"));
            panic!("outer")
        });
        assert!(outer.unwrap_err().starts_with("outer"));
        assert_eq!(ACTIVE.with(Cell::get), 0);
    }
}
