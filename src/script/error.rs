//! Why `linkrun run` failed: the script cannot be read or its inputs are wrong (exit 2), or the
//! script itself failed (exit 1; an uncaught `connection` error of `invoke_url` is exit 4). One
//! variant, and one message, per condition. A script's own `exit(n)` is not an error of this
//! kind: it is [`crate::Error::Exit`].

use crate::files::ReadError;

/// A script run failed.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The script file cannot be opened or read.
    #[error("cannot read the script `{path}`: {reason}; check the path")]
    Unreadable {
        /// The path as given.
        path: String,
        /// The reason, in words.
        reason: String,
    },
    /// The script is not a regular file, too large, or not UTF-8.
    #[error("cannot run the script: {source}")]
    NotAScript {
        /// Why.
        #[source]
        source: ReadError,
    },
    /// A `--arg-json` value exceeds the data limits.
    #[error("the value of `--arg {key}` has {what}: pass a smaller value")]
    ArgTooLarge {
        /// The argument's name.
        key: String,
        /// What is too much, in words.
        what: String,
    },
    /// The `--input` value exceeds the data limits.
    #[error("the `--input` value has {what}: give a smaller input")]
    InputTooLarge {
        /// What is too much, in words.
        what: String,
    },
    /// A `--arg-json` value is not JSON.
    #[error(
        "the value of `--arg-json {key}` is not JSON ({source}): write it as JSON, e.g. --arg-json {key}=42 or --arg-json {key}='\"text\"'"
    )]
    ArgNotJson {
        /// The argument's name.
        key: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A `--arg` (or `--arg-json`) is not `KEY=VALUE`.
    #[error("`{text}` is not KEY=VALUE: write {flag} NAME=VALUE")]
    NotKeyValue {
        /// The argument as given.
        text: String,
        /// The flag (`--arg`, `--arg-json`).
        flag: String,
    },
    /// The `--input` file cannot be opened or read.
    #[error("cannot read the input `{path}`: {reason}; check the path")]
    InputUnreadable {
        /// The path as given.
        path: String,
        /// The reason, in words.
        reason: String,
    },
    /// The `--input` file is not a regular file, too large, or not UTF-8.
    #[error("cannot read the input: {source}")]
    InputNotText {
        /// Why.
        #[source]
        source: ReadError,
    },
    /// The `--input` text is not JSON.
    #[error("the input `{path}` is not JSON ({source}): fix it, or give --input a JSON file")]
    InputNotJson {
        /// The path as given (`<stdin>` for standard input).
        path: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A Deluge file does not parse, or uses what linkrun cannot run (the report quotes the line).
    #[error("{report}")]
    Deluge {
        /// `file:line:col: error: ...` with the source line and a caret.
        report: String,
    },
    /// A Deluge input (a parameter or a free variable) was not given.
    #[error(
        "`{name}` reads `{var}` at {at}, but no value was given: pass it with `--arg {var}=VALUE` (or a `{var}` key in `--input`)"
    )]
    DelugeInputMissing {
        /// The file's name.
        name: String,
        /// The input.
        var: String,
        /// Where it is declared or first read, quoted.
        at: String,
    },
    /// A Deluge parameter's value does not fit its type.
    #[error("the value of `{var}` is not a valid {ty} for `{name}` (declared at {at}): pass a value of type {ty}")]
    DelugeInputType {
        /// The file's name.
        name: String,
        /// The parameter.
        var: String,
        /// Its declared type.
        ty: String,
        /// Where it is declared, quoted.
        at: String,
    },
    /// The script does not compile.
    #[error("script `{name}` has a syntax error at {at}: {message}; fix it and run again")]
    Syntax {
        /// The script's name.
        name: String,
        /// Where, in words (`line 3, column 5`).
        at: String,
        /// The parser's message.
        message: String,
    },
    /// The script uses a variable before defining it.
    #[error(
        "script `{name}` uses the variable `{var}` before defining it at {at}: define it with `let {var} = ...` first"
    )]
    UndefinedVariable {
        /// The script's name.
        name: String,
        /// The variable.
        var: String,
        /// Where, in words.
        at: String,
    },
    /// A function uses `args` or `input`, which it does not see.
    #[error(
        "script `{name}` uses the variable `{var}` inside a function at {at}, which sees only its own variables: call `{var}()` there instead"
    )]
    ScriptVariableInFunction {
        /// The script's name.
        name: String,
        /// `args` or `input`.
        var: String,
        /// Where, in words.
        at: String,
    },
    /// The script calls a function that does not exist for these arguments.
    #[error(
        "script `{name}` calls `{function}({types})` at {at}, but there is no function `{function}` for these arguments: check the function's name and the number and types of its arguments"
    )]
    NoSuchFunction {
        /// The script's name.
        name: String,
        /// The function's name.
        function: String,
        /// The argument types, as scripts write them.
        types: String,
        /// Where, in words.
        at: String,
    },
    /// An uncaught `connection` error of `invoke_url` (exit 4).
    #[error("{message} (uncaught in `{name}` at {at})")]
    UncaughtConnection {
        /// The script's name.
        name: String,
        /// Where, in words.
        at: String,
        /// The error's message.
        message: String,
    },
    /// An uncaught error map with a `kind` (an `invoke_url` error other than `connection`).
    #[error("{message} (uncaught `{kind}` error in `{name}` at {at}; catch it with try/catch)")]
    Uncaught {
        /// The script's name.
        name: String,
        /// Where, in words.
        at: String,
        /// The error's `kind`.
        kind: String,
        /// The error's message.
        message: String,
    },
    /// The script threw a value of its own.
    #[error("script `{name}` threw {value} at {at}")]
    Threw {
        /// The script's name.
        name: String,
        /// Where, in words.
        at: String,
        /// The value thrown, as displayed.
        value: String,
    },
    /// The script ran more operations than the engine allows.
    #[error("script `{name}` ran more than the limit of 1,000,000,000 operations at {at}: look for an endless loop")]
    TooManyOperations {
        /// The script's name.
        name: String,
        /// Where, in words.
        at: String,
    },
    /// Any other error of the engine.
    #[error("script `{name}` failed at {at}: {message}")]
    Failed {
        /// The script's name.
        name: String,
        /// Where, in words.
        at: String,
        /// The engine's message.
        message: String,
    },
    /// The script ran longer than `--timeout`.
    #[error("script `{name}` ran longer than its time limit of {secs} s: raise it with --timeout SECS")]
    TimeLimit {
        /// The script's name.
        name: String,
        /// The limit, in seconds.
        secs: f64,
    },
    /// The script assigns into a constant (the engine panics on it).
    #[error(
        "script `{name}` assigns into a value it cannot change (a constant, or a value that is not a variable): copy it into a variable with `let` and change that"
    )]
    AssignToConstant {
        /// The script's name.
        name: String,
    },
    /// The engine panicked.
    #[error(
        "script `{name}` stopped on an internal error of the script engine ({message}): simplify the statement it stopped at"
    )]
    Internal {
        /// The script's name.
        name: String,
        /// The panic's message, shortened.
        message: String,
    },
    /// `exit(n)` with a code a script may not give.
    #[error(
        "script `{name}` calls `exit({code})` at {at}, a code a script may not give (2 to 4 mean usage, vault and connection errors): call exit with 0, 1 or 5 to 125"
    )]
    BadExitCode {
        /// The script's name.
        name: String,
        /// The code as given (a string is quoted).
        code: String,
        /// Where, in words.
        at: String,
    },
    /// `state_get`/`state_set` in a script from standard input without `--state-key`.
    #[error(
        "script `{name}` calls `{function}`, but a script read from standard input keeps no state of its own: pass --state-key NAME to name its state"
    )]
    NoStateScope {
        /// The script's name.
        name: String,
        /// `state_get` or `state_set`.
        function: String,
    },
}

impl ScriptError {
    /// The process exit code: 2 for an unreadable script or bad inputs, 4 for an uncaught
    /// `connection` error, 1 for the script's own failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            ScriptError::Unreadable { .. }
            | ScriptError::NotAScript { .. }
            | ScriptError::ArgTooLarge { .. }
            | ScriptError::InputTooLarge { .. }
            | ScriptError::ArgNotJson { .. }
            | ScriptError::NotKeyValue { .. }
            | ScriptError::InputUnreadable { .. }
            | ScriptError::InputNotText { .. }
            | ScriptError::InputNotJson { .. }
            | ScriptError::DelugeInputMissing { .. }
            | ScriptError::DelugeInputType { .. } => 2,
            ScriptError::UncaughtConnection { .. } => 4,
            ScriptError::Syntax { .. }
            | ScriptError::Deluge { .. }
            | ScriptError::UndefinedVariable { .. }
            | ScriptError::ScriptVariableInFunction { .. }
            | ScriptError::NoSuchFunction { .. }
            | ScriptError::Uncaught { .. }
            | ScriptError::Threw { .. }
            | ScriptError::TooManyOperations { .. }
            | ScriptError::Failed { .. }
            | ScriptError::TimeLimit { .. }
            | ScriptError::AssignToConstant { .. }
            | ScriptError::Internal { .. }
            | ScriptError::BadExitCode { .. }
            | ScriptError::NoStateScope { .. } => 1,
        }
    }
}
