package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/apiview"
	"github.com/wingmanha/wingman/cmd/internal/forward"
)

// The API's document, docs/openapi.json: its paths are written by hand,
// its components.schemas are the JSON of cmd/api's types with their doc
// comments, rewritten by go test -run TestOpenAPI -update-openapi.
var updateOpenAPI = flag.Bool("update-openapi", false, "rewrite docs/openapi.json's components.schemas from cmd/api's types")

// openAPIPath is the document from this package; openAPIName names it in messages.
const openAPIPath, openAPIName = "../../docs/openapi.json", "docs/openapi.json"

// openAPITypes are the types the document's schemas describe.
var openAPITypes = []any{api.Status{}, api.Host{}, api.VM{}, api.Event{}, api.Error{}, api.ProtectRequest{}, api.ProtectResult{},
	api.MigrateRequest{}, api.MigrateResult{}, api.MaintenanceRequest{}, api.FenceRequest{}, api.FenceResult{}, api.ExecRequest{},
	api.ExecResult{}, api.RebootRequest{}, api.RebootResult{}, api.Evacuation{}, api.EvacuationPlan{}, api.DrillRequest{}, api.DrillReport{},
	api.NotifyTarget{}, api.NotifyTestRequest{}, api.NotifyTestResult{}, api.Incident{}, api.ClusterSettings{}, api.ConfigSetRequest{}, api.DisarmRequest{}, api.HAState{},
	api.RestoreHeaderRequest{}, api.RestoreHeaderResult{}, api.ReclaimLeaseRequest{}, api.ReclaimLeaseResult{},
	api.ConfirmOffResult{}, api.QuarantineRequest{}, api.QuarantineResult{}}

type openAPIDoc struct {
	OpenAPI    string                                 `json:"openapi"`
	Paths      map[string]map[string]openAPIOperation `json:"paths"`
	Components struct {
		Schemas map[string]any `json:"schemas"`
	} `json:"components"`
}

type openAPIOperation struct {
	Parameters []struct {
		Name     string `json:"name"`
		In       string `json:"in"`
		Required bool   `json:"required"`
	} `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema map[string]any `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]struct {
			Schema map[string]any `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

// daemonRoutes are the routes of the daemon's router, built without a
// running daemon: the handlers are only listed, never called.
func daemonRoutes() []api.Route {
	d := &Daemon{}
	d.ops = apiServer{d}.register(forward.New(1, nil, apiview.Classify))
	return apiServer{d}.router().Routes()
}

func readOpenAPI(t *testing.T) (openAPIDoc, []byte) {
	t.Helper()
	b, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIName, err)
	}
	return doc, b
}

// TestOpenAPIDescribesEveryRoute: every route the daemon serves under /v1
// is in docs/openapi.json with its path and query parameters, and every
// operation of the document is served.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc, _ := readOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("%s: openapi %q, want 3.x", openAPIName, doc.OpenAPI)
	}
	served := map[string]api.Route{}
	for _, r := range daemonRoutes() {
		if !strings.HasPrefix(r.Path, "/v1/") {
			continue // the dashboard's pages are not the API
		}
		key := strings.ToLower(r.Method) + " " + r.Path
		served[key] = r
		op, ok := doc.Paths[r.Path][strings.ToLower(r.Method)]
		if !ok {
			t.Errorf("%s %s is served (cmd/wingmand's router) but not in %s: add paths[%q].%s", r.Method, r.Path, openAPIName, r.Path, strings.ToLower(r.Method))
			continue
		}
		var inPath, inQuery []string
		for _, p := range op.Parameters {
			switch p.In {
			case "path":
				inPath = append(inPath, p.Name)
				if !p.Required {
					t.Errorf("%s: %s %s: path parameter %q must be required", openAPIName, r.Method, r.Path, p.Name)
				}
			case "query":
				inQuery = append(inQuery, p.Name)
			}
		}
		var want []string
		for _, m := range regexp.MustCompile(`\{([a-z]+)\}`).FindAllStringSubmatch(r.Path, -1) {
			want = append(want, m[1])
		}
		if slices.Sort(inPath); !slices.Equal(inPath, want) {
			t.Errorf("%s: %s %s documents path parameters %v, the route has %v", openAPIName, r.Method, r.Path, inPath, want)
		}
		want = slices.Sorted(slices.Values(r.Query))
		if slices.Sort(inQuery); !slices.Equal(inQuery, want) {
			t.Errorf("%s: %s %s documents query parameters %v, the route takes %v", openAPIName, r.Method, r.Path, inQuery, want)
		}
		if _, ok := op.Responses["default"]; !ok {
			t.Errorf("%s: %s %s has no default response (the one error shape, #/components/schemas/Error)", openAPIName, r.Method, r.Path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if _, ok := served[method+" "+path]; !ok {
				t.Errorf("%s documents %s %s, which the daemon does not serve: remove it, or register it in cmd/wingmand's router", openAPIName, strings.ToUpper(method), path)
			}
		}
	}
}

// TestOpenAPISchemasAreTheAPITypes: the schemas are what cmd/api's types
// encode to, and every reference of the document resolves.
func TestOpenAPISchemasAreTheAPITypes(t *testing.T) {
	doc, raw := readOpenAPI(t)
	want := openAPISchemas(t)
	if *updateOpenAPI {
		var full map[string]any
		if err := json.Unmarshal(raw, &full); err != nil {
			t.Fatal(err)
		}
		full["components"] = map[string]any{"schemas": want}
		b, err := json.MarshalIndent(full, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(openAPIPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		doc, raw = readOpenAPI(t)
	}
	got, _ := json.Marshal(doc.Components.Schemas)
	exp, _ := json.Marshal(want)
	if !bytes.Equal(got, exp) {
		t.Errorf("%s: components.schemas differ from cmd/api's types; run go test ./cmd/wingmand -run TestOpenAPI -update-openapi", openAPIName)
	}
	for _, m := range regexp.MustCompile(`"\$ref": *"#/components/schemas/([A-Za-z]+)"`).FindAllStringSubmatch(string(raw), -1) {
		if _, ok := doc.Components.Schemas[m[1]]; !ok {
			t.Errorf("%s refers to schema %s, which it does not define: add api.%s to openAPITypes (cmd/wingmand/openapi_test.go) and run go test ./cmd/wingmand -run TestOpenAPI -update-openapi",
				openAPIName, m[1], m[1])
		}
	}
}

// openAPISchemas describes openAPITypes and the types they use.
func openAPISchemas(t *testing.T) map[string]any {
	docs := apiFieldDocs(t)
	out := map[string]any{}
	inRequest := map[string]bool{} // the structs a request body holds
	var mark func(reflect.Type)
	mark = func(rt reflect.Type) {
		switch rt.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			mark(rt.Elem())
		case reflect.Struct:
			if !inRequest[rt.Name()] && rt.PkgPath() != "time" {
				inRequest[rt.Name()] = true
				for f := range rt.Fields() {
					mark(f.Type)
				}
			}
		}
	}
	for _, v := range openAPITypes {
		if rt := reflect.TypeOf(v); strings.HasSuffix(rt.Name(), "Request") {
			mark(rt)
		}
	}
	var describe func(reflect.Type) map[string]any
	describe = func(rt reflect.Type) map[string]any {
		switch {
		case rt == reflect.TypeFor[time.Time]():
			return map[string]any{"type": "string", "format": "date-time"}
		case rt == reflect.TypeFor[time.Duration]():
			return map[string]any{"type": "integer", "format": "int64", "description": "nanoseconds"}
		}
		switch rt.Kind() {
		case reflect.Pointer:
			return describe(rt.Elem())
		case reflect.Bool:
			return map[string]any{"type": "boolean"}
		case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Uint32, reflect.Uint:
			return map[string]any{"type": "integer"}
		case reflect.Float64:
			return map[string]any{"type": "number"}
		case reflect.String:
			return map[string]any{"type": "string"}
		case reflect.Slice:
			return map[string]any{"type": "array", "items": describe(rt.Elem())}
		case reflect.Map:
			return map[string]any{"type": "object", "additionalProperties": describe(rt.Elem())}
		case reflect.Struct:
			if _, ok := out[rt.Name()]; !ok {
				out[rt.Name()] = nil // a type that refers to itself stops here
				props := map[string]any{}
				for f := range rt.Fields() {
					name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
					if name == "-" || !f.IsExported() {
						continue
					}
					if name == "" {
						name = f.Name
					}
					p := describe(f.Type)
					if d := docs[rt.Name()+"."+f.Name]; d != "" {
						if _, isRef := p["$ref"]; isRef {
							p = map[string]any{"allOf": []any{p}, "description": d}
						} else {
							p["description"] = d
						}
					}
					props[name] = p
				}
				s := map[string]any{"type": "object", "properties": props}
				if inRequest[rt.Name()] {
					s["additionalProperties"] = false // the daemon refuses an unknown field; answers may grow
				}
				if d := docs[rt.Name()]; d != "" {
					s["description"] = d
				}
				out[rt.Name()] = s
			}
			return map[string]any{"$ref": "#/components/schemas/" + rt.Name()}
		}
		t.Fatalf("openAPISchemas: no schema for %v", rt)
		return nil
	}
	for _, v := range openAPITypes {
		describe(reflect.TypeOf(v))
	}
	return out
}

// apiFieldDocs are the doc comments of cmd/api's types ("Status") and
// their fields ("Status.Host"), on one line each.
func apiFieldDocs(t *testing.T) map[string]string {
	fset := token.NewFileSet()
	files, err := filepath.Glob("../api/*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	text := func(groups ...*ast.CommentGroup) string {
		var parts []string
		for _, g := range groups {
			if s := strings.Join(strings.Fields(g.Text()), " "); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, " ")
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, spec := range g.Specs {
				ts := spec.(*ast.TypeSpec)
				if g.Doc != nil {
					out[ts.Name.Name] = text(g.Doc)
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fld := range st.Fields.List {
					var groups []*ast.CommentGroup
					for _, c := range []*ast.CommentGroup{fld.Doc, fld.Comment} {
						if c != nil {
							groups = append(groups, c)
						}
					}
					for _, n := range fld.Names {
						if s := text(groups...); s != "" {
							out[fmt.Sprintf("%s.%s", ts.Name.Name, n.Name)] = s
						}
					}
				}
			}
		}
	}
	return out
}
