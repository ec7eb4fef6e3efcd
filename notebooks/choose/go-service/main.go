// A small HTTP service that needs nothing but Go's standard library (notebook 11): what it costs to build for
// another platform is mostly what it costs to compile the standard library packages it imports.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"runtime"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"os": runtime.GOOS, "arch": runtime.GOARCH})
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
