package sticky

import "time"

// SetNow makes now the clock that bounds h's retries ([WithRetries]).
// Call it before h serves.
func SetNow(h *Handler, now func() time.Time) { h.now = now }
