package sigv4_test

import (
	"crypto/sha256"
	"encoding/hex"
)

func sigv4SHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
