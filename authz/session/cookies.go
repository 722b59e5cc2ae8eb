package session

// Cookies are the cookies a request carries, by name; the first value of
// a name wins. authz reads them straight from the Cookie header without
// building a map; CookieMap serves callers that have one.
type Cookies interface {
	Get(name string) (value string, ok bool)
	// AppendAll appends each name once, with its value, to dst.
	AppendAll(dst []Cookie) []Cookie
}

// Cookie is one cookie a request carries.
type Cookie struct{ Name, Value string }

// CookieMap is Cookies in a map.
type CookieMap map[string]string

// Get implements Cookies.
func (m CookieMap) Get(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// AppendAll implements Cookies (in map order).
func (m CookieMap) AppendAll(dst []Cookie) []Cookie {
	for n, v := range m {
		dst = append(dst, Cookie{n, v})
	}
	return dst
}

// get and all treat nil Cookies as none.
func get(c Cookies, name string) (string, bool) {
	if c == nil {
		return "", false
	}
	return c.Get(name)
}

func all(c Cookies) []Cookie {
	if c == nil {
		return nil
	}
	return c.AppendAll(make([]Cookie, 0, 8))
}
