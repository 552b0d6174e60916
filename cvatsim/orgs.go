package cvatsim

import (
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// org is an Organization row. Its creator is its owner, through a membership made with it.
type org struct {
	id          int
	slug        string
	name        string
	description string
	owner       *user
	created     time.Time
	updated     time.Time
}

// membership is a Membership row; the emulator makes only the owner's, as creating an organization does
// (invitations are not emulated).
type membership struct {
	id     int
	user   *user
	org    *org
	role   string
	joined time.Time
}

// orgScope is a request's organization context (API.md §2.3): specified is false when the request named
// none (lists show everything the user may see; creations go to the sandbox); org nil with specified true
// is the personal sandbox.
type orgScope struct {
	specified bool
	org       *org
}

// includes reports whether an object of organization o belongs in a list under the scope.
func (sc orgScope) includes(o *org) bool { return !sc.specified || sc.org == o }

// resolveOrg reads the organization context as get_organization does (cvat/apps/iam/middleware.py in
// 2.73.0): org_id with org or the header is 400, org and the header with different values 400, an unknown
// slug or id 404 naming it, a non-numeric org_id 500 (int() raises). A user who is not a member of the
// organization (and not an admin) gets 403. ok false means the answer was sent.
func (s *Server) resolveOrg(c *call) bool {
	q := c.r.URL.Query()
	slug, hasSlug := first(q["org"])
	orgID, hasOrgID := first(q["org_id"])
	hdr, hasHdr := first(c.r.Header["X-Organization"])
	switch {
	case hasOrgID && (hasSlug || hasHdr):
		c.badRequest([]string{`You cannot specify "org_id" query parameter with "org" query parameter or "X-Organization" HTTP header at the same time.`})
		return false
	case hasSlug && hasHdr && slug != hdr:
		c.badRequest([]string{`You cannot specify "org" query parameter and "X-Organization" HTTP header with different values.`})
		return false
	}
	if !hasSlug {
		slug, hasSlug = hdr, hasHdr
	}
	c.scope = orgScope{specified: hasSlug || hasOrgID}
	if slug == "" && orgID == "" {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *org
	if slug != "" {
		found = s.orgBySlugLocked(slug)
	} else {
		id, err := strconv.Atoi(orgID)
		if err != nil {
			c.serverError()
			return false
		}
		found = s.orgs[id]
	}
	if found == nil {
		name := slug
		if name == "" {
			name = orgID
		}
		c.detail(http.StatusNotFound, name+" organization does not exist.")
		return false
	}
	if !c.user.superuser && s.membershipLocked(found, c.user) == nil {
		c.forbidden()
		return false
	}
	c.scope.org = found
	return true
}

func first(v []string) (string, bool) {
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func (s *Server) orgBySlugLocked(slug string) *org {
	for _, o := range s.orgs {
		if o.slug == slug {
			return o
		}
	}
	return nil
}

func (s *Server) membershipLocked(o *org, u *user) *membership {
	for _, m := range s.members {
		if m.org == o && m.user == u {
			return m
		}
	}
	return nil
}

var slugPattern = regexp.MustCompile(`^[-a-zA-Z0-9_]+$`)

// handleCreateOrg is POST /api/organizations: the creator becomes its owner.
func (s *Server) handleCreateOrg(c *call) {
	var in struct {
		Slug        *string `json:"slug"`
		Name        *string `json:"name"`
		Description *string `json:"description"`
	}
	if !c.decodeJSON(&in) {
		return
	}
	errs := obj{}
	switch {
	case in.Slug == nil:
		errs = append(errs, kv{"slug", []string{"This field is required."}})
	case *in.Slug == "":
		errs = append(errs, kv{"slug", []string{"This field may not be blank."}})
	case utf8.RuneCountInString(*in.Slug) > 16:
		errs = append(errs, kv{"slug", []string{"Ensure this field has no more than 16 characters."}})
	case !slugPattern.MatchString(*in.Slug):
		errs = append(errs, kv{"slug", []string{`Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.`}})
	}
	if in.Name != nil && utf8.RuneCountInString(*in.Name) > 64 {
		errs = append(errs, kv{"name", []string{"Ensure this field has no more than 64 characters."}})
	}
	if len(errs) > 0 {
		c.badRequest(errs)
		return
	}
	now := s.now()
	s.mu.Lock()
	if s.orgBySlugLocked(*in.Slug) != nil {
		s.mu.Unlock()
		c.badRequest(fieldError("slug", "organization with this slug already exists."))
		return
	}
	o := &org{id: s.nextID("org"), slug: *in.Slug, owner: c.user, created: now, updated: now}
	if in.Name != nil {
		o.name = *in.Name
	}
	if in.Description != nil {
		o.description = *in.Description
	}
	s.orgs[o.id] = o
	s.members = append(s.members, &membership{id: s.nextID("membership"), user: c.user, org: o, role: "owner", joined: now})
	out := renderOrg(o, c.base())
	s.mu.Unlock()
	c.json(http.StatusCreated, out)
}

// handleListOrgs is GET /api/organizations: the organizations the user is a member of (an admin: all).
func (s *Server) handleListOrgs(c *call) {
	s.mu.Lock()
	var os []*org
	for _, o := range s.orgs {
		if c.user.superuser || s.membershipLocked(o, c.user) != nil {
			if v := c.r.URL.Query().Get("slug"); v == "" || v == o.slug {
				os = append(os, o)
			}
		}
	}
	sort.Slice(os, func(i, j int) bool { return os[i].id > os[j].id })
	items := make([]obj, len(os))
	for i, o := range os {
		items[i] = renderOrg(o, c.base())
	}
	s.mu.Unlock()
	c.list(items)
}

// orgForPath returns the organization of the path id the user may see; ok false means the 404 was sent.
func (s *Server) orgForPathLocked(c *call) (*org, bool) {
	id, ok := c.pathID(0, "Organization")
	if !ok {
		return nil, false
	}
	o := s.orgs[id]
	if o == nil || (!c.user.superuser && s.membershipLocked(o, c.user) == nil) {
		c.notFound("Organization")
		return nil, false
	}
	return o, true
}

// handleGetOrg is GET /api/organizations/{id}.
func (s *Server) handleGetOrg(c *call) {
	s.mu.Lock()
	o, ok := s.orgForPathLocked(c)
	if !ok {
		s.mu.Unlock()
		return
	}
	out := renderOrg(o, c.base())
	s.mu.Unlock()
	c.json(http.StatusOK, out)
}

// handleDeleteOrg is DELETE /api/organizations/{id}, for its owner or an admin. As the foreign keys of 2.73
// say: its webhooks and memberships go with it (CASCADE), its projects and tasks stay, in the sandbox
// (SET_NULL).
func (s *Server) handleDeleteOrg(c *call) {
	s.mu.Lock()
	o, ok := s.orgForPathLocked(c)
	if !ok {
		s.mu.Unlock()
		return
	}
	if !c.user.superuser && o.owner != c.user {
		s.mu.Unlock()
		c.forbidden()
		return
	}
	for id, w := range s.webhooks {
		if w.org == o {
			delete(s.webhooks, id)
		}
	}
	for _, p := range s.projects {
		if p.org == o {
			p.org = nil
		}
	}
	for _, t := range s.tasks {
		if t.org == o {
			t.org = nil
		}
	}
	kept := s.members[:0]
	for _, m := range s.members {
		if m.org != o {
			kept = append(kept, m)
		}
	}
	s.members = kept
	delete(s.orgs, o.id)
	s.mu.Unlock()
	c.w.WriteHeader(http.StatusNoContent)
}

// handleListMemberships is GET /api/memberships, under the organization context: without one, the
// memberships of every organization the user may see.
func (s *Server) handleListMemberships(c *call) {
	s.mu.Lock()
	var ms []*membership
	for _, m := range s.members {
		if !c.scope.includes(m.org) {
			continue
		}
		if c.user.superuser || s.membershipLocked(m.org, c.user) != nil {
			ms = append(ms, m)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].id > ms[j].id })
	items := make([]obj, len(ms))
	for i, m := range ms {
		items[i] = obj{{"id", m.id}, {"user", basicUser(m.user, c.base())}, {"organization", m.org.id},
			{"is_active", true}, {"joined_date", fmtTime(m.joined)}, {"role", m.role}, {"invitation", nil}}
	}
	s.mu.Unlock()
	c.list(items)
}

func renderOrg(o *org, base string) obj {
	return obj{{"id", o.id}, {"slug", o.slug}, {"name", o.name}, {"description", o.description},
		{"created_date", fmtTime(o.created)}, {"updated_date", fmtTime(o.updated)}, {"contact", obj{}},
		{"owner", basicUser(o.owner, base)}}
}

// orgIDOf is the organization id field of an object: null in the sandbox.
func orgIDOf(o *org) any {
	if o == nil {
		return nil
	}
	return o.id
}
