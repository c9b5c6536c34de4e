package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// amqp091-go's limits on a field table (read.go).
const (
	maxContainer = 8192 // entries in one table or array
	maxDepth     = 32   // tables and arrays nested in the headers table
)

// errors checkTable reports.
var (
	errTooMany   = fmt.Errorf("a table or array of over %d entries", maxContainer)
	errTooDeep   = fmt.Errorf("tables or arrays nested over %d deep", maxDepth)
	errTruncated = errors.New("a truncated field")
)

// fieldTypeError is a field type amqp091-go does not know.
type fieldTypeError byte

func (e fieldTypeError) Error() string { return fmt.Sprintf("field type %q", byte(e)) }

// checkTable walks an encoded field table (without its length), turns 'L'
// (py-amqp's 64-bit integer) into the same-sized 'l' in place, and reports
// why amqp091-go would refuse the table. It is stricter than amqp091-go
// where amqp091-go is lenient (duplicate keys, an array's truncated last
// field), never laxer.
func checkTable(b []byte, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	for entries := 0; len(b) > 0; entries++ {
		if entries == maxContainer {
			return errTooMany
		}
		k := 1 + int(b[0])
		if k > len(b) {
			return errTruncated
		}
		n, err := checkField(b[k:], depth)
		if err != nil {
			return err
		}
		b = b[k+n:]
	}
	return nil
}

// checkArray is checkTable for a field array.
func checkArray(b []byte, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	for entries := 0; len(b) > 0; entries++ {
		if entries == maxContainer {
			return errTooMany
		}
		n, err := checkField(b, depth)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// checkField checks the field at the start of b and returns its length.
func checkField(b []byte, depth int) (int, error) {
	if len(b) == 0 {
		return 0, errTruncated
	}
	var n int
	switch b[0] {
	case 'V':
		return 1, nil
	case 't', 'B', 'b':
		n = 1
	case 's', 'u':
		n = 2
	case 'I', 'i', 'f':
		n = 4
	case 'D':
		n = 5
	case 'L':
		b[0] = 'l'
		n = 8
	case 'l', 'd', 'T':
		n = 8
	case 'S', 'x', 'A', 'F':
		if len(b) < 5 {
			return 0, errTruncated
		}
		size := binary.BigEndian.Uint32(b[1:5])
		if size > math.MaxInt32 || int64(size) > int64(len(b)-5) {
			return 0, errTruncated
		}
		n = 4 + int(size)
		switch b[0] {
		case 'A':
			if err := checkArray(b[5:1+n], depth+1); err != nil {
				return 0, err
			}
		case 'F':
			if err := checkTable(b[5:1+n], depth+1); err != nil {
				return 0, err
			}
		}
	default:
		return 0, fieldTypeError(b[0])
	}
	if 1+n > len(b) {
		return 0, errTruncated
	}
	return 1 + n, nil
}
