// Package web holds the playground's page: plain HTML, CSS and JavaScript
// drawing SVG, served as they are (no build step).
package web

import "embed"

// FS holds index.html, app.css and app.js.
//
//go:embed index.html app.css app.js
var FS embed.FS
