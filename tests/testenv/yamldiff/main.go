// Command yamldiff decodes YAML streams exactly as Kubernetes clients do,
// for chartbroker's differential test of its own manifest reader
// (tests/adapters/yaml_differential.rs).
//
// Input, on stdin: one stream per line, base64 of its bytes. Output, on
// stdout: one JSON object per input line:
//
//	{"kubectl": [doc, ...], "yamltojson": [doc, ...]}
//
// or {"error": "..."} when either reading fails. `kubectl` is the stream as
// kubectl's and helm's resource builder reads it
// (k8s.io/apimachinery/pkg/util/yaml.NewYAMLOrJSONDecoder into a
// RawExtension, empty and null documents skipped, then the unstructured
// JSON decoding and re-encoding the API server receives); `yamltojson` is
// each document split the same way and converted by sigs.k8s.io/yaml's
// YAMLToJSON alone (what helm's manifest handling uses).
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

type result struct {
	Kubectl    []json.RawMessage `json:"kubectl,omitempty"`
	YAMLToJSON []json.RawMessage `json:"yamltojson,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// kubectlDocs reads a stream as the resource builder's StreamVisitor does.
func kubectlDocs(stream []byte) ([]json.RawMessage, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	out := []json.RawMessage{}
	for {
		ext := runtime.RawExtension{}
		if err := d.Decode(&ext); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("kubectl decoder: %w", err)
		}
		raw := bytes.TrimSpace(ext.Raw)
		if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
			continue
		}
		// What the API server receives: the unstructured object, encoded.
		var obj interface{}
		if err := utiljson.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("unstructured decoding: %w", err)
		}
		enc, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("unstructured encoding: %w", err)
		}
		out = append(out, enc)
	}
}

// yamlToJSONDocs splits a stream with the Kubernetes YAML reader and
// converts each document with sigs.k8s.io/yaml.YAMLToJSON.
func yamlToJSONDocs(stream []byte) ([]json.RawMessage, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	out := []json.RawMessage{}
	for {
		chunk, err := r.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("yaml reader: %w", err)
		}
		j, err := yaml.YAMLToJSON(chunk)
		if err != nil {
			return nil, fmt.Errorf("YAMLToJSON: %w", err)
		}
		j = bytes.TrimSpace(j)
		if len(j) == 0 || bytes.Equal(j, []byte("null")) {
			continue
		}
		out = append(out, j)
	}
}

func decode(line []byte) result {
	stream, err := base64.StdEncoding.DecodeString(string(bytes.TrimRight(line, "\n")))
	if err != nil {
		return result{Error: "input is not base64: " + err.Error()}
	}
	k, err := kubectlDocs(stream)
	if err != nil {
		return result{Error: err.Error()}
	}
	y, err := yamlToJSONDocs(stream)
	if err != nil {
		return result{Error: err.Error()}
	}
	return result{Kubectl: k, YAMLToJSON: y}
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for {
		line, err := in.ReadBytes('\n')
		// Every line is a stream, the empty one included: the caller
		// waits for one answer per line.
		if len(line) > 0 {
			if e := enc.Encode(decode(line)); e != nil {
				fmt.Fprintln(os.Stderr, "yamldiff:", e)
				os.Exit(2)
			}
			// One answer per line, at once: the caller waits for it.
			if e := out.Flush(); e != nil {
				os.Exit(2)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return
			}
			fmt.Fprintln(os.Stderr, "yamldiff:", err)
			os.Exit(2)
		}
	}
}
