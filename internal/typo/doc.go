// Package typo measures how far a mistyped word is from the one meant, so
// error messages can suggest it: unknown signal "HUPP" (try SIGHUP).
package typo
