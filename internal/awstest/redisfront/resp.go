package redisfront

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

const (
	maxArgs    = 1 << 20
	maxBulkLen = 64 << 20
)

//lint:ignore ST1005 the text is what redis-server answers: "-ERR Protocol error"
var errProtocol = errors.New("Protocol error")

// readCommand reads one client command: a RESP array of bulk strings, or an
// inline command (a line of space-separated words).
func readCommand(rd *bufio.Reader) ([][]byte, error) {
	line, err := readLine(rd)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, nil
	}
	if line[0] != '*' {
		fields := bytes.Fields(line)
		out := make([][]byte, len(fields))
		for i, f := range fields {
			out[i] = append([]byte(nil), f...)
		}
		return out, nil
	}
	n, err := strconv.Atoi(string(line[1:]))
	if err != nil || n > maxArgs {
		return nil, errProtocol
	}
	if n <= 0 {
		return nil, nil
	}
	args := make([][]byte, n)
	for i := range args {
		hdr, err := readLine(rd)
		if err != nil {
			return nil, err
		}
		if len(hdr) == 0 || hdr[0] != '$' {
			return nil, errProtocol
		}
		l, err := strconv.Atoi(string(hdr[1:]))
		if err != nil || l < 0 || l > maxBulkLen {
			return nil, errProtocol
		}
		b := make([]byte, l+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, err
		}
		if b[l] != '\r' || b[l+1] != '\n' {
			return nil, errProtocol
		}
		args[i] = b[:l]
	}
	return args, nil
}

func readLine(rd *bufio.Reader) ([]byte, error) {
	line, err := rd.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errProtocol
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

// writeCommand writes args as a RESP array of bulk strings.
func writeCommand(w *bufio.Writer, args ...[]byte) error {
	var num [20]byte
	w.WriteByte('*')
	w.Write(strconv.AppendInt(num[:0], int64(len(args)), 10))
	w.WriteString("\r\n")
	for _, a := range args {
		w.WriteByte('$')
		w.Write(strconv.AppendInt(num[:0], int64(len(a)), 10))
		w.WriteString("\r\n")
		w.Write(a)
		w.WriteString("\r\n")
	}
	return nil
}

func strArgs(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, x := range s {
		out[i] = []byte(x)
	}
	return out
}
