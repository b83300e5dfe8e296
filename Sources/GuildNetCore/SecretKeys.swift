/// Recognizes settings keys whose values are credentials, so that every reply and log line can
/// redact them. A key is secret when any of its words (split on `.`, `_` and `-`) is one of
/// ``secretWords``: `rethinkdb.password`, `api_token`, `ts_client_auth`, `tls.private_key`, `kubeconfig`.
public enum SecretKeys {
    public static let secretWords: Set<String> = [
        "password", "passwd", "pass", "token", "secret", "key", "credential", "credentials",
        "auth", "kubeconfig", "apikey", "authkey", "privatekey",
    ]

    /// The placeholder that replaces a secret value in replies and logs.
    public static let redacted: JSONValue = .string("<redacted>")

    public static func isSecret(_ key: String) -> Bool {
        var word = ""
        for char in key.lowercased() {
            if char == "." || char == "_" || char == "-" {
                if secretWords.contains(word) { return true }
                word = ""
            } else {
                word.append(char)
            }
        }
        return secretWords.contains(word)
    }

    /// `value`, or the redaction placeholder when `key` is secret.
    public static func redact(_ value: JSONValue, forKey key: String) -> JSONValue {
        isSecret(key) ? redacted : value
    }
}
