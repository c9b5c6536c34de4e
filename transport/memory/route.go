package memory

import "strings"

// words splits a routing key or binding key into its dot-separated words;
// the empty key has none, as in RabbitMQ.
func words(key string) []string {
	if key == "" {
		return nil
	}
	return strings.Split(key, ".")
}

// topicMatch reports whether a topic binding key matches a routing key: "*"
// stands for exactly one word, "#" for zero or more.
func topicMatch(pattern, key string) bool {
	p, k := words(pattern), words(key)
	// ok[j] holds whether p[:i] matches k[:j], for the i of the outer loop.
	ok := make([]bool, len(k)+1)
	ok[0] = true
	for _, w := range p {
		next := make([]bool, len(k)+1)
		for j := 0; j <= len(k); j++ {
			switch {
			case w == "#":
				next[j] = ok[j] || (j > 0 && next[j-1])
			case j > 0 && (w == "*" || w == k[j-1]):
				next[j] = ok[j-1]
			}
		}
		ok = next
	}
	return ok[len(k)]
}

// matches reports whether a binding with key bkey on an exchange of kind
// routes a message published with routing key rkey.
func matches(kind, bkey, rkey string) bool {
	switch kind {
	case fanout:
		return true
	case topic:
		return topicMatch(bkey, rkey)
	}
	return bkey == rkey
}
