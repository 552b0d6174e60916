package cvatsim

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"
)

// authenticate runs CVAT's authentication classes in order: Token, Bearer
// (PAT), Session (with the CSRF check on unsafe methods), Basic (API.md §2.1).
// It sets c.user on success. A non-zero status is the error answer: 401 for
// bad credentials, 403 for CSRF failures.
func (s *Server) authenticate(c *call) (int, string) {
	r := c.r
	authz := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(strings.TrimSpace(authz), " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "token":
		if cred == "" {
			return http.StatusUnauthorized, "Invalid token header. No credentials provided."
		}
		if strings.Contains(cred, " ") {
			return http.StatusUnauthorized, "Invalid token header. Token string should not contain spaces."
		}
		s.mu.Lock()
		u := s.userByToken(cred)
		s.mu.Unlock()
		if u == nil {
			return http.StatusUnauthorized, "Invalid token."
		}
		c.user, c.auth = u, "token"
		return 0, ""
	case "bearer":
		if cred == "" {
			return http.StatusUnauthorized, "Invalid token header. No credentials provided."
		}
		s.mu.Lock()
		p := s.pats[cred]
		s.mu.Unlock()
		if p == nil || (p.expiry != nil && !s.now().Before(*p.expiry)) {
			return http.StatusUnauthorized, "Invalid token."
		}
		c.user, c.auth, c.pat = p.user, "bearer", p
		return 0, ""
	}
	if ck, err := r.Cookie("sessionid"); err == nil {
		s.mu.Lock()
		sess := s.sessions[ck.Value]
		s.mu.Unlock()
		if sess != nil {
			if !safeMethod(r.Method) {
				if reason := csrfCheck(c, r); reason != "" {
					return http.StatusForbidden, "CSRF Failed: " + reason
				}
			}
			c.user, c.auth = sess.user, "session"
			return 0, ""
		}
	}
	if strings.EqualFold(scheme, "basic") {
		c.auth = "basic"
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return http.StatusUnauthorized, "Invalid basic header. Credentials not correctly base64 encoded."
		}
		name, pw, ok := strings.Cut(string(raw), ":")
		if !ok {
			return http.StatusUnauthorized, "Invalid basic header. Credentials string should not contain spaces."
		}
		s.mu.Lock()
		u := s.checkPassword(name, pw)
		s.mu.Unlock()
		if u == nil {
			return http.StatusUnauthorized, "Invalid username/password."
		}
		c.user = u
		return 0, ""
	}
	return 0, "" // anonymous; views that need a user answer 401
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// csrfCheck is Django's CsrfViewMiddleware as DRF's SessionAuthentication
// calls it: Origin first (when sent), then the X-CSRFToken header against the
// csrftoken cookie. It returns the failure reason or "".
func csrfCheck(c *call, r *http.Request) string {
	if origin := r.Header.Get("Origin"); origin != "" && origin != c.base() {
		return "Origin checking failed - " + origin + " does not match any trusted origins."
	}
	ck, err := r.Cookie("csrftoken")
	if err != nil || ck.Value == "" {
		return "CSRF cookie not set."
	}
	tok := r.Header.Get("X-CSRFToken")
	if tok == "" {
		return "CSRF token missing."
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(ck.Value)) != 1 {
		return "CSRF token incorrect."
	}
	return ""
}

func (s *Server) userByToken(key string) *user {
	for _, u := range s.users {
		if u.tokenKey != "" && subtle.ConstantTimeCompare([]byte(u.tokenKey), []byte(key)) == 1 {
			return u
		}
	}
	return nil
}

func (s *Server) checkPassword(name, pw string) *user {
	for _, u := range s.users {
		if (u.username == name || u.email == name) && subtle.ConstantTimeCompare([]byte(u.password), []byte(pw)) == 1 {
			return u
		}
	}
	return nil
}

// handleAbout is GET /api/server/about (no authentication).
func (s *Server) handleAbout(c *call) {
	c.json(http.StatusOK, obj{
		{"name", "Computer Vision Annotation Tool"},
		{"subtitle", "Open Data Annotation Platform"},
		{"description", "CVAT is completely re-designed and re-implemented version of Video Annotation Tool from Irvine, California team. (cvatsim: an emulator of CVAT " + Version + ")"},
		{"version", Version},
		{"logo_url", c.base() + "/static/logo.svg"},
	})
}

// handleLogin is POST /api/auth/login: the DRF token plus the session and CSRF
// cookies (API.md §2.1, §12).
func (s *Server) handleLogin(c *call) {
	var in struct {
		Username *string `json:"username"`
		Email    *string `json:"email"`
		Password *string `json:"password"`
	}
	if !c.decodeJSON(&in) {
		return
	}
	if in.Password == nil || *in.Password == "" {
		c.badRequest(fieldError("password", "This field is required."))
		return
	}
	name := ""
	if in.Username != nil {
		name = *in.Username
	} else if in.Email != nil {
		name = *in.Email
	}
	s.mu.Lock()
	u := s.checkPassword(name, *in.Password)
	if u == nil {
		s.mu.Unlock()
		c.badRequest(fieldError("non_field_errors", "Unable to log in with provided credentials."))
		return
	}
	if u.tokenKey == "" {
		u.tokenKey = randomHex(20)
	}
	u.lastLogin = s.now()
	sid, csrf := randomHex(16), randomHex(16)
	s.sessions[sid] = &session{user: u, csrf: csrf}
	key := u.tokenKey
	s.mu.Unlock()
	exp := time.Now().UTC()
	http.SetCookie(c.w, &http.Cookie{Name: "csrftoken", Value: csrf, Path: "/", MaxAge: 31449600,
		Expires: exp.Add(31449600 * time.Second), SameSite: http.SameSiteLaxMode})
	http.SetCookie(c.w, &http.Cookie{Name: "sessionid", Value: sid, Path: "/", MaxAge: 1209600,
		Expires: exp.Add(1209600 * time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	c.json(http.StatusOK, obj{{"key", key}})
}

// handleLogout is POST /api/auth/logout: it deletes the token and the session.
func (s *Server) handleLogout(c *call) {
	s.mu.Lock()
	if c.user != nil && c.auth == "token" {
		c.user.tokenKey = ""
	}
	if ck, err := c.r.Cookie("sessionid"); err == nil {
		delete(s.sessions, ck.Value)
	}
	s.mu.Unlock()
	c.json(http.StatusOK, obj{{"detail", "Successfully logged out."}})
}

// handleCreatePAT is POST /api/auth/access_tokens. Basic, a session or the
// legacy login key may create a token; a PAT cannot create a PAT (API.md §2.1;
// CALIBRATION.md §5.4). A new token is read-only unless asked otherwise.
func (s *Server) handleCreatePAT(c *call) {
	if c.auth != "basic" && c.auth != "session" && c.auth != "token" {
		c.forbidden()
		return
	}
	var in struct {
		Name       *string    `json:"name"`
		ExpiryDate *time.Time `json:"expiry_date"`
		ReadOnly   *bool      `json:"read_only"`
	}
	if !c.decodeJSON(&in) {
		return
	}
	if in.Name == nil || *in.Name == "" {
		c.badRequest(fieldError("name", "This field is required."))
		return
	}
	if len(*in.Name) > 50 {
		c.badRequest(fieldError("name", "Ensure this field has no more than 50 characters."))
		return
	}
	now := s.now()
	s.mu.Lock()
	n := 0
	for _, p := range s.pats {
		if p.user == c.user {
			n++
		}
	}
	if n >= 50 {
		s.mu.Unlock()
		c.badRequest([]string{"Too many access tokens. The maximum allowed number is 50."})
		return
	}
	readOnly := in.ReadOnly == nil || *in.ReadOnly
	p := &pat{id: s.nextID("pat"), name: *in.Name, value: randomHex(32), user: c.user, readOnly: readOnly,
		created: now, expiry: in.ExpiryDate}
	s.pats[p.value] = p
	s.mu.Unlock()
	c.json(http.StatusCreated, append(renderPAT(p, c.base()), kv{"value", p.value}))
}

// renderPAT is AccessTokenRead without the value, which is shown once, at creation.
func renderPAT(p *pat, base string) obj {
	var exp any
	if p.expiry != nil {
		exp = fmtTime(*p.expiry)
	}
	return obj{
		{"id", p.id}, {"name", p.name}, {"created_date", fmtTime(p.created)}, {"updated_date", fmtTime(p.created)},
		{"expiry_date", exp}, {"last_used_date", nil}, {"read_only", p.readOnly},
		{"owner", basicUser(p.user, base)},
	}
}

// handlePATSelf is GET /api/auth/access_tokens/self: the token the call is authenticated with.
func (s *Server) handlePATSelf(c *call) {
	if c.pat == nil {
		c.notFound("AccessToken")
		return
	}
	s.mu.Lock()
	out := renderPAT(c.pat, c.base())
	s.mu.Unlock()
	c.json(http.StatusOK, out)
}

// ownPATLocked finds the caller's token of the path's id; false means the 404 was sent.
func (s *Server) ownPATLocked(c *call) (*pat, bool) {
	id, ok := c.pathID(0, "AccessToken")
	if !ok {
		return nil, false
	}
	for _, p := range s.pats {
		if p.id == id && p.user == c.user {
			return p, true
		}
	}
	c.notFound("AccessToken")
	return nil, false
}

// handleGetPAT is GET /api/auth/access_tokens/{id}.
func (s *Server) handleGetPAT(c *call) {
	s.mu.Lock()
	p, ok := s.ownPATLocked(c)
	var out obj
	if ok {
		out = renderPAT(p, c.base())
	}
	s.mu.Unlock()
	if ok {
		c.json(http.StatusOK, out)
	}
}

// handleDeletePAT is DELETE /api/auth/access_tokens/{id}: 204, and the token stops working at once.
func (s *Server) handleDeletePAT(c *call) {
	s.mu.Lock()
	p, ok := s.ownPATLocked(c)
	if ok {
		delete(s.pats, p.value)
	}
	s.mu.Unlock()
	if ok {
		c.w.WriteHeader(http.StatusNoContent)
	}
}

// handleSelf is GET /api/users/self.
func (s *Server) handleSelf(c *call) {
	u := c.user
	groups := []string{"user"}
	if u.superuser {
		groups = []string{"admin"}
	}
	s.mu.Lock()
	last := u.lastLogin
	s.mu.Unlock()
	c.json(http.StatusOK, obj{
		{"url", c.base() + "/api/users/" + itoa(u.id)}, {"id", u.id}, {"username", u.username},
		{"first_name", u.first}, {"last_name", u.last}, {"email", u.email}, {"groups", groups},
		{"is_staff", u.superuser}, {"is_superuser", u.superuser}, {"is_active", true},
		{"last_login", timeOrNil(last)}, {"date_joined", fmtTime(u.joined)}, {"has_analytics_access", u.superuser},
	})
}

// basicUser renders a BasicUser; base "" gives a relative URL.
func basicUser(u *user, base string) any {
	if u == nil {
		return nil
	}
	return obj{{"url", base + "/api/users/" + itoa(u.id)}, {"id", u.id}, {"username", u.username},
		{"first_name", u.first}, {"last_name", u.last}}
}

// decodeJSON parses the request body as a JSON object into v. An empty body is
// an empty object. ok false means the 400 or 415 was sent.
func (c *call) decodeJSON(v any) bool {
	ct := c.r.Header.Get("Content-Type")
	if ct != "" && !strings.Contains(ct, "json") {
		c.detail(http.StatusUnsupportedMediaType, "Unsupported media type \""+ct+"\" in request.")
		return false
	}
	if len(strings.TrimSpace(string(c.body))) == 0 {
		return true
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			c.badRequest(fieldError(ute.Field, "Incorrect type. Expected "+ute.Type.String()+", but got "+ute.Value+"."))
			return false
		}
		c.detail(http.StatusBadRequest, "JSON parse error - "+err.Error())
		return false
	}
	return true
}

// handleListPATs is GET /api/auth/access_tokens (auth_list_access_tokens): the caller's own tokens, newest
// first, without their values (those are shown once, at creation).
func (s *Server) handleListPATs(c *call) {
	q := c.r.URL.Query()
	s.mu.Lock()
	var ps []*pat
	for _, p := range s.pats {
		if p.user != c.user {
			continue
		}
		if n := q.Get("name"); n != "" && p.name != n {
			continue
		}
		if ro := q.Get("read_only"); ro != "" && (ro == "true") != p.readOnly {
			continue
		}
		ps = append(ps, p)
	}
	s.mu.Unlock()
	desc := sortDesc(q, true)
	sort.Slice(ps, func(i, j int) bool { return (ps[i].id > ps[j].id) == desc })
	items := make([]obj, len(ps))
	for i, p := range ps {
		items[i] = renderPAT(p, c.base())
	}
	c.list(items)
}
