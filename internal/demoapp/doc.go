// Package demoapp is a tiny stateful web application: the kind of server
// sticky sessions exist for. The stickyproxy example runs it behind the
// proxy, and tests use it as a backend.
//
// An [App] keeps its login sessions in its own memory, not in a shared
// store. A client that logs in on one instance and is then routed to another
// is a stranger there: that is the failure a sticky-session balancer
// prevents, and what tests look for.
//
// The conversation:
//
//	GET  /        login page ("please log in") for a visitor who is not
//	              logged in, who gets a session cookie if they had none;
//	              else "hello NAME", with the server's name and the path.
//	              Any other GET path behaves like /.
//	POST /login   form field name (1 to 64 printable characters) logs the
//	              session in and redirects (303) to /; a bad name is 400.
//	POST /logout  ends the session, expires its cookie, redirects to /.
//	GET  /whoami  text/plain "server=NAME user=USER", USER empty when not
//	              logged in: for machines.
//
// Every response carries the header X-Served-By: NAME.
//
// The application is a demonstration, not a template for a real login: it
// checks no password and has no CSRF protection beyond SameSite=Lax
// cookies, and its cookie is not Secure so that it works over plain HTTP.
package demoapp
