package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// checkServerURL returns what is wrong with a non-empty --url, or "". run and cleanup call it before any
// request, so a URL the client would refuse is bad input (exit 2) rather than a failure at run time. The URL
// itself is never echoed: it may hold credentials.
func checkServerURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "--url is not a valid URL"
	case u.User != nil:
		return "--url must not contain credentials, use --user/--password or --token"
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("--url scheme must be http or https, not %q", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return "--url has no host"
	case !validPort(u.Port()):
		return fmt.Sprintf("--url port %q is not a number in 1..65535", u.Port())
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "--url must not have a query or fragment"
	case strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/api"):
		return "--url must leave out the /api suffix"
	}
	return ""
}

// validPort accepts an absent port (the scheme's default) or 1..65535.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}
