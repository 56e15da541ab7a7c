//! The terminal guard: raw mode, alternate screen, mouse capture, bracketed
//! paste and focus reporting are switched on by [`TerminalGuard::enter`] and off again when the
//! guard drops — on quit, on error (`?` unwinding through `run`) and, through
//! a panic hook, before a panic message is printed.

use std::io::{self, Write};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::cursor::Show;
use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, DisableMouseCapture, EnableBracketedPaste,
    EnableFocusChange, EnableMouseCapture,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

/// True while the UI owns the terminal; makes [`restore`] idempotent, so the
/// panic hook and the guard's drop can both call it.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Owns the terminal's modes while alive. Hold it for as long as the UI runs.
#[must_use = "the terminal is restored when the guard drops"]
pub struct TerminalGuard {
    _private: (),
}

impl TerminalGuard {
    /// Takes the terminal over; `mouse`: capture the mouse (`mouse = true`
    /// in client.toml), else leave it to the terminal's own text selection.
    pub fn enter(mouse: bool) -> io::Result<TerminalGuard> {
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        // From here on a failure drops the guard, which undoes what was done.
        let guard = TerminalGuard { _private: () };
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableBracketedPaste,
            EnableFocusChange
        )?;
        set_mouse_capture(mouse)?;
        Ok(guard)
    }
}

/// Switches mouse capture on (wheel and clicks come to the messenger) or
/// off (the terminal selects text). [`restore`] switches it off either way.
pub fn set_mouse_capture(on: bool) -> io::Result<()> {
    if on {
        execute!(io::stdout(), EnableMouseCapture)
    } else {
        execute!(io::stdout(), DisableMouseCapture)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back as the shell expects it. Safe to call any number of
/// times; only the first call after `enter` does anything.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = io::stdout();
    // Best effort: if the terminal is gone there is nobody to tell.
    let _ = execute!(
        out,
        DisableFocusChange,
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        Show
    );
    let _ = disable_raw_mode();
    let _ = out.flush();
}

/// Chains a hook that restores the terminal before the previous hook prints
/// the panic, so the message lands on a normal screen. Installed once and left
/// in place: after the guard is gone `restore` is a no-op.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
