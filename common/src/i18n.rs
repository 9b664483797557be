//! Placeholder for the translation layer (issue 13), English only: `tr!` and `say!` with
//! the contract's shape, so that new lessons can be written on it now. The real module
//! (catalogs, `--lang`, the locale) replaces this file.

/// `tr!("English text with {name}", name = expr, fd)`: the text in the chosen language,
/// with its named placeholders filled (`fd` alone means `fd = fd`).
#[macro_export]
macro_rules! tr {
    ($msg:literal $(,)?) => { ::std::format!($msg) };
    ($msg:literal, $($rest:tt)*) => { $crate::__tr_args!(@acc $msg; []; $($rest)*) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __tr_args {
    (@acc $msg:literal; [$($done:tt)*]; ) => { ::std::format!($msg $($done)*) };
    (@acc $msg:literal; [$($done:tt)*]; $name:ident = $val:expr $(, $($rest:tt)*)?) => {
        $crate::__tr_args!(@acc $msg; [$($done)* , $name = $val]; $($($rest)*)?)
    };
    (@acc $msg:literal; [$($done:tt)*]; $name:ident $(, $($rest:tt)*)?) => {
        $crate::__tr_args!(@acc $msg; [$($done)* , $name = $name]; $($($rest)*)?)
    };
}

/// `say!(n, "English text {x}", x = ...)`: `n.say(tr!(...))`.
#[macro_export]
macro_rules! say {
    ($n:expr, $($args:tt)*) => { $n.say($crate::tr!($($args)*)) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn named_and_shorthand_arguments_fill_the_placeholders() {
        let fd = 3;
        assert_eq!(crate::tr!("fd {fd} of {n}", fd, n = 2 + 2), "fd 3 of 4");
        assert_eq!(crate::tr!("plain"), "plain");
    }
}
