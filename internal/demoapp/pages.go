package demoapp

import (
	"html/template"
	"net/http"
)

// The app's pages; html/template escapes every value they show.
var (
	loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Server}}: log in</title></head>
<body>
<p>Hello, stranger: please log in.</p>
<form method="post" action="/login">
<label>Name <input name="name" maxlength="64" required autofocus></label>
<button>Log in</button>
</form>
<p><small>served by {{.Server}}, path {{.Path}}</small></p>
</body>
</html>
`))

	helloPage = template.Must(template.New("hello").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Server}}: hello {{.User}}</title></head>
<body>
<p>hello {{.User}}</p>
<p>served by {{.Server}}, path {{.Path}}</p>
<form method="post" action="/logout"><button>Log out</button></form>
</body>
</html>
`))
)

// pageData is what the pages show.
type pageData struct {
	Server string
	User   string
	Path   string
}

// render writes page t with status 200.
func render(w http.ResponseWriter, t *template.Template, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = t.Execute(w, d) // only a write to a gone client can fail
}
