package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Connection kinds, the hello's second field.
const (
	kindStream   byte = 1
	kindSnapshot byte = 2
	kindQuery    byte = 3
	kindCall     byte = 4 // one request to a member, one answer
	kindProbe    byte = 5 // round-trip probes, each echoed
)

// knownKind reports whether this member serves connections of kind; it
// refuses others (a newer member's), with a reason.
func knownKind(kind byte) bool { return kind >= kindStream && kind <= kindProbe }

// Hello statuses.
const (
	statusOK         byte = 0
	statusRefused    byte = 1 // wrong cluster or member; the reason follows
	statusRemoved    byte = 2 // the sender was removed from the cluster
	statusFailed     byte = 3 // a snapshot could not be stored; the reason follows
	statusUnknownErr byte = 4
)

var magic = [4]byte{'t', 'n', 'd', '1'}

const helloSize = 4 + 1 + 8 + 8 + 8

// maxFrame bounds one frame: a Raft message is at most a few MiB
// (MaxSizePerMsg plus one entry up to the request size limit).
const maxFrame = 256 << 20

// hello opens every connection.
type hello struct {
	kind     byte
	cluster  uint64
	from, to uint64
}

func (h hello) encode() []byte {
	b := make([]byte, 0, helloSize)
	b = append(b, magic[:]...)
	b = append(b, h.kind)
	b = binary.BigEndian.AppendUint64(b, h.cluster)
	b = binary.BigEndian.AppendUint64(b, h.from)
	b = binary.BigEndian.AppendUint64(b, h.to)
	return b
}

func readHello(r io.Reader) (hello, error) {
	var b [helloSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return hello{}, fmt.Errorf("read hello: %w", err)
	}
	if [4]byte(b[:4]) != magic {
		return hello{}, errors.New("read hello: not a tend peer (bad magic)")
	}
	return hello{
		kind:    b[4],
		cluster: binary.BigEndian.Uint64(b[5:]),
		from:    binary.BigEndian.Uint64(b[13:]),
		to:      binary.BigEndian.Uint64(b[21:]),
	}, nil
}

// writeStatus answers a hello or a snapshot: one byte, and for a refusal
// the reason as a frame.
func writeStatus(w io.Writer, status byte, reason string) error {
	b := []byte{status}
	if status != statusOK {
		b = appendFrame(b, []byte(reason))
	}
	_, err := w.Write(b)
	return err
}

// RefusedError is a peer's refusal of a connection.
type RefusedError struct {
	Removed bool // the peer says this member was removed from the cluster
	Reason  string
}

func (e *RefusedError) Error() string { return "peer refused: " + e.Reason }

func readStatus(r *bufio.Reader) error {
	s, err := r.ReadByte()
	if err != nil {
		return fmt.Errorf("read status: %w", err)
	}
	if s == statusOK {
		return nil
	}
	reason, err := readFrame(r, nil)
	if err != nil {
		return fmt.Errorf("read refusal: %w", err)
	}
	return &RefusedError{Removed: s == statusRemoved, Reason: string(reason)}
}

func appendFrame(b, payload []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// readFrame reads one frame into buf (grown as needed).
func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	return readFrameMax(r, buf, maxFrame)
}

// readFrameMax reads one frame of at most limit bytes into buf.
func readFrameMax(r *bufio.Reader, buf []byte, limit uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("frame of %d bytes exceeds the %d byte limit", n, limit)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// chunkWriter writes snapshot data as frames; Close writes the empty frame
// that ends it.
type chunkWriter struct{ w io.Writer }

func (c chunkWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(p)))
	if _, err := c.w.Write(hdr[:n]); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

func (c chunkWriter) Close() error {
	_, err := c.w.Write([]byte{0})
	return err
}

// chunkReader reads the data chunkWriter wrote, up to its empty frame.
type chunkReader struct {
	r    *bufio.Reader
	left uint64
	done bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	if c.left == 0 {
		n, err := binary.ReadUvarint(c.r)
		if err != nil {
			return 0, unexpected(err)
		}
		if n == 0 {
			c.done = true
			return 0, io.EOF
		}
		c.left = n
	}
	if uint64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= uint64(n)
	return n, unexpected(err)
}

// drain reads to the end of the chunks, so the status can follow.
func (c *chunkReader) drain() error {
	_, err := io.Copy(io.Discard, c)
	return err
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
