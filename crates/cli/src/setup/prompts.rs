//! The wizard's terminal I/O: questions with a default, hidden secrets, asking again on a bad
//! answer.

use std::io::{BufRead, Write};

use super::Invalid;

/// Terminal I/O of the interactive wizard.
pub struct Prompter<'a> {
    /// Answers.
    pub input: &'a mut dyn BufRead,
    /// Questions.
    pub out: &'a mut dyn Write,
    /// Hide typed secrets (a real terminal).
    pub hide: bool,
}

impl Prompter<'_> {
    /// Asks once; Enter keeps `default`. End of input cancels the setup.
    pub fn ask(&mut self, q: &str, default: &str) -> std::io::Result<String> {
        if default.is_empty() {
            write!(self.out, "{q}: ")?;
        } else {
            write!(self.out, "{q} [{default}]: ")?;
        }
        self.out.flush()?;
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "setup cancelled (end of input)",
            ));
        }
        let line = line.trim().to_string();
        Ok(if line.is_empty() {
            default.to_string()
        } else {
            line
        })
    }

    /// Asks for a secret, not echoed on a real terminal.
    pub fn secret(&mut self, q: &str) -> std::io::Result<String> {
        let _echo = self.hide.then(EchoOff::new).flatten();
        let v = self.ask(q, "");
        if self.hide {
            writeln!(self.out)?;
        }
        v
    }

    /// Asks until the answer passes `check`.
    pub fn ask_valid<T>(
        &mut self,
        q: &str,
        default: &str,
        secret: bool,
        check: impl Fn(&str) -> Result<T, Invalid>,
    ) -> std::io::Result<T> {
        loop {
            let a = if secret {
                self.secret(q)?
            } else {
                self.ask(q, default)?
            };
            match check(&a) {
                Ok(v) => return Ok(v),
                Err(Invalid(msg)) => writeln!(self.out, "  {msg}; try again.")?,
            }
        }
    }
}

/// Turns terminal echo off for as long as it lives.
struct EchoOff(libc::termios);

impl EchoOff {
    fn new() -> Option<Self> {
        // SAFETY: termios calls on stdin's fd with a zeroed, then filled, struct.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            Some(Self(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `new`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}
