//! Local RPC on top of the ALPC channel (note 003, 3.7.3: applications call RPC; on one
//! machine, RPC goes through ALPC).
//!
//! A caller calls an ordinary-looking function, `rpc::add(n, &mut channel, 2, 40)`. Its
//! *client stub* marshals the arguments into bytes, hands them to [`Channel::call`] (which
//! picks the inline, section or direct path by size), and unmarshals the result. On the
//! server, [`dispatch`] is the *server stub*: it unmarshals the arguments, calls the
//! procedure (plain Rust functions: [`add`], [`upper`], [`greet`]) and marshals its result.
//!
//! The marshaling (a small NDR of this demo's own), little-endian:
//!
//! ```text
//! procedure  id  arguments                        result
//! echo       1   bytes (as they are)              the same bytes, a-z in capitals
//! add        2   i64 a, i64 b                     i64 a + b (an error on overflow)
//! upper      3   u32 length, UTF-8 bytes          u32 length, UTF-8 bytes, a-z in capitals
//! greet      4   (none)                           u32 length, UTF-8 "hello, NAME"
//! callback 1 (server to client, during greet): no arguments; answer: u32 length, UTF-8 name
//! ```
//!
//! See also: [`crate::channel`], and `midl`/NDR in the Windows RPC documentation for
//! the real thing.

use common::{Error, Narrator, Result, say, tr};

use crate::channel::Channel;
use crate::wire::{Reader, Writer};

/// `echo(bytes)`: the transport's own test.
pub const ECHO: u32 = 1;
/// `add(a, b)`.
pub const ADD: u32 = 2;
/// `upper(text)`.
pub const UPPER: u32 = 3;
/// `greet()`, which calls back into the client for its name.
pub const GREET: u32 = 4;
/// The callback `greet` makes: "what is your name?".
pub const CALLBACK_NAME: u32 = 1;

// ---------------------------------------------------------------------------------------
// The procedures: what the server implements, ordinary functions.

/// Adds two numbers; `None` if the sum does not fit.
pub fn add(a: i64, b: i64) -> Option<i64> {
    a.checked_add(b)
}

/// The text with a-z in capitals.
pub fn upper(text: &str) -> String {
    text.to_ascii_uppercase()
}

/// A greeting for `name`.
pub fn greet(name: &str) -> String {
    format!("hello, {name}")
}

// ---------------------------------------------------------------------------------------
// Marshaling.

fn put_string(w: &mut Writer, text: &str) {
    w.u32(u32::try_from(text.len()).unwrap_or(u32::MAX))
        .bytes(text.as_bytes());
}

fn get_string(r: &mut Reader<'_>) -> Result<String> {
    let len = r.u32("length")? as usize;
    let bytes = r.take(len, "text")?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::bad_data(tr!("unmarshal a string"), tr!("it is not UTF-8")))
}

fn string_only(bytes: &[u8], what: &'static str) -> Result<String> {
    let mut r = Reader::new(bytes, what);
    let text = get_string(&mut r)?;
    r.end()?;
    Ok(text)
}

fn marshal_string(text: &str) -> Vec<u8> {
    let mut w = Writer::default();
    put_string(&mut w, text);
    w.0
}

/// The first bytes of a marshaled buffer in hex, to show in the narration.
fn hex(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 16 { " ..." } else { "" };
    format!("{}{more}", shown.join(" "))
}

// ---------------------------------------------------------------------------------------
// The server stub.

/// How the server stub asks the waiting client something: callback number and data in,
/// the client's answer out.
pub type CallBack<'a> = dyn FnMut(u32, &[u8]) -> Result<Vec<u8>> + 'a;

// ANCHOR: dispatch
/// The server stub: unmarshals the arguments of procedure `id`, calls it, marshals the
/// result. `callback` asks the waiting client a question (for `greet`).
pub fn dispatch(
    n: &Narrator,
    id: u32,
    args: &[u8],
    callback: &mut CallBack<'_>,
) -> Result<Vec<u8>> {
    match id {
        ECHO => Ok(args.to_ascii_uppercase()),
        ADD => {
            let mut r = Reader::new(args, "add's arguments");
            let (a, b) = (r.i64("a")?, r.i64("b")?);
            r.end()?;
            say!(n, "add({a}, {b})", a, b);
            let sum = add(a, b).ok_or_else(|| {
                Error::bad_data(
                    tr!("add({a}, {b})", a, b),
                    tr!("the sum does not fit in 64 bits"),
                )
            })?;
            Ok(sum.to_le_bytes().to_vec())
        }
        UPPER => {
            let text = string_only(args, "upper's argument")?;
            say!(n, "upper(a string of {len} bytes)", len = text.len());
            Ok(marshal_string(&upper(&text)))
        }
        GREET => {
            Reader::new(args, "greet's arguments").end()?;
            say!(n, "greet(): I call back into the client to ask its name");
            let name = string_only(&callback(CALLBACK_NAME, &[])?, "the callback's answer")?;
            Ok(marshal_string(&greet(&name)))
        }
        other => Err(Error::bad_data(
            tr!("dispatch"),
            tr!("there is no procedure {other}", other),
        )),
    }
}
// ANCHOR_END: dispatch

// ---------------------------------------------------------------------------------------
// The client stubs.

/// No callback is expected: one that comes anyway is an error.
fn no_callback(_: &Narrator, id: u32, _: &[u8]) -> Result<Vec<u8>> {
    Err(Error::bad_data(
        tr!("answer a callback"),
        tr!("callback {id} was not expected", id),
    ))
}

/// `echo(data)`: the result is the data with a-z in capitals.
pub fn echo(n: &Narrator, ch: &mut Channel, data: &[u8]) -> Result<Vec<u8>> {
    ch.call(n, ECHO, data, data.len(), &mut no_callback)
}

// ANCHOR: stubs
/// The client stub of `add`: marshal, call, unmarshal.
pub fn add_stub(n: &Narrator, ch: &mut Channel, a: i64, b: i64) -> Result<i64> {
    let mut w = Writer::default();
    w.i64(a).i64(b);
    say!(
        n,
        "rpc add({a}, {b}): arguments marshaled into {len} bytes: {hex}",
        a,
        b,
        len = w.0.len(),
        hex = hex(&w.0)
    );
    let result = ch.call(n, ADD, &w.0, 8, &mut no_callback)?;
    let mut r = Reader::new(&result, "add's result");
    let sum = r.i64("sum")?;
    r.end()?;
    Ok(sum)
}

/// The client stub of `upper`.
pub fn upper_stub(n: &Narrator, ch: &mut Channel, text: &str) -> Result<String> {
    let args = marshal_string(text);
    say!(
        n,
        "rpc upper(...): arguments marshaled into {len} bytes: {hex}",
        len = args.len(),
        hex = hex(&args)
    );
    let result = ch.call(n, UPPER, &args, args.len(), &mut no_callback)?;
    string_only(&result, "upper's result")
}

/// The client stub of `greet`: it also answers the server's callback with `my_name`.
pub fn greet_stub(n: &Narrator, ch: &mut Channel, my_name: &str) -> Result<String> {
    let mut on_callback = |n: &Narrator, id: u32, _: &[u8]| -> Result<Vec<u8>> {
        if id != CALLBACK_NAME {
            return no_callback(n, id, &[]);
        }
        say!(
            n,
            "callback: the server asks my name; I answer {my_name}",
            my_name = format!("{my_name:?}")
        );
        Ok(marshal_string(my_name))
    };
    say!(n, "rpc greet(): no arguments");
    let result = ch.call(n, GREET, &[], INLINE_REPLY, &mut on_callback)?;
    string_only(&result, "greet's result")
}
// ANCHOR_END: stubs

/// The reply buffer a stub offers when its result is small.
const INLINE_REPLY: usize = 0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_stub_refuses_bad_arguments_and_overflow() {
        let n = Narrator::silent("test");
        let mut never = |_: u32, _: &[u8]| -> Result<Vec<u8>> { Ok(Vec::new()) };
        assert!(dispatch(&n, ADD, &[1, 2, 3], &mut never).is_err());
        let mut w = Writer::default();
        w.i64(i64::MAX).i64(1);
        let err = dispatch(&n, ADD, &w.0, &mut never).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
        let mut w = Writer::default();
        w.u32(100).bytes(b"short");
        assert!(dispatch(&n, UPPER, &w.0, &mut never).is_err());
        assert!(dispatch(&n, 99, &[], &mut never).is_err());
        let mut w = Writer::default();
        w.i64(2).i64(40);
        assert_eq!(
            dispatch(&n, ADD, &w.0, &mut never).unwrap(),
            42i64.to_le_bytes()
        );
    }
}
