package doctor

// Overall exposes the status rule to the tests.
func Overall(r Report) string { return r.overall() }
