// Package sample holds types that use every rule of encoding/json the
// generator follows, and its generated encoders: the tests here hold them
// to encoding/json, beyond what the verdict log's records use today.
package sample

//lint:file-ignore SA5008 odd json tags are what these types exist to hold encoding/json to
//lint:file-ignore U1000 unexported fields are here to show that encoding/json, and so the generator, skips them

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Regenerate: go test -tags jsongen ./internal/jsongen/internal/sample -run TestGeneratedIsCurrent -update

// Named types of each kind: the generated code converts them.
type (
	Name    string
	Count   int8
	Flag    bool
	Ratio   float32
	Big     uint64
	Blob    []byte
	Strings []string
	Ptr     *Inner
)

// Level writes itself as text, like a time or an address would.
type Level int

// MarshalText implements encoding.TextMarshaler.
func (l Level) MarshalText() ([]byte, error) {
	return []byte("level<" + strconv.Itoa(int(l)) + ">"), nil
}

// Checked writes itself as JSON, and fails for -1.
type Checked int

// MarshalJSON implements json.Marshaler.
func (c Checked) MarshalJSON() ([]byte, error) {
	if c == -1 {
		return nil, errors.New("minus one")
	}
	return []byte(`{"checked" : ` + strconv.Itoa(int(c)) + "}"), nil
}

// Inner is a struct reached by value, by pointer, in slices and maps.
type Inner struct {
	ID    int      `json:"id"`
	Note  string   `json:"note,omitempty"`
	Tags  []string `json:"tags"`
	Score float64  `json:"score"`
}

// String makes Inner a fmt.Stringer, for the interface field of that type.
func (i Inner) String() string { return fmt.Sprint(i.ID) }

// Left and Right are embedded side by side: their fields of one name
// conflict.
type Left struct {
	Same   string // untagged in both: neither is written
	Tie    string `json:"tie"` // tagged here only: this one wins
	Shadow string // hidden by Sample.Shadow
	OnlyL  int    `json:"only_l"`
}

// Right: see Left.
type Right struct {
	Same  string
	Tie   string
	OnlyR int `json:"only_r"`
}

// Deep is embedded through a pointer, two levels down.
type Deep struct {
	DeepField string `json:"deep"`
	Shadow    string // deeper than Sample.Shadow: hidden
}

// Outer is embedded by pointer; it embeds Deep by pointer.
type Outer struct {
	OuterField string `json:"outer,omitempty"`
	*Deep
}

// inner is an unexported embedded struct: its exported fields are
// promoted all the same.
type inner struct {
	Promoted string `json:"promoted"`
	hidden   string
}

// Zeroish has a field tagged omitzero: json.Marshal writes it.
type Zeroish struct {
	When time.Time `json:"when,omitzero"`
	N    int       `json:"n"`
}

// Quoted has a field tagged ",string": json.Marshal writes it.
type Quoted struct {
	N int `json:"n,string"`
}

// Sample reaches every rule.
type Sample struct {
	Plain     string
	Tagged    string `json:"tagged"`
	HTML      string `json:"a<b>&c"`
	Invalid   string `json:"bad\"name"`
	Dash      string `json:"-"`
	DashComma string `json:"-,"`
	Opts      string `json:",omitempty"`
	Unicode   string `json:"naïve"`
	unexp     string

	Bool  bool    `json:"bool"`
	Int   int     `json:"int"`
	I8    int8    `json:"i8"`
	I16   int16   `json:"i16"`
	I32   int32   `json:"i32"`
	I64   int64   `json:"i64"`
	U     uint    `json:"u"`
	U8    uint8   `json:"u8"`
	U16   uint16  `json:"u16"`
	U32   uint32  `json:"u32"`
	U64   uint64  `json:"u64"`
	UP    uintptr `json:"up"`
	F32   float32 `json:"f32"`
	F64   float64 `json:"f64"`
	Named Name    `json:"named"`
	Cnt   Count   `json:"cnt"`
	Fl    Flag    `json:"fl"`
	Ra    Ratio   `json:"ra"`
	Bg    Big     `json:"bg"`

	Bytes     []byte    `json:"bytes"`
	Blob      Blob      `json:"blob"`
	ByteArr   [3]byte   `json:"byte_arr"`
	Arr       [2]int    `json:"arr"`
	EmptyArr  [0]string `json:"empty_arr"`
	Strs      []string  `json:"strs"`
	NamedStrs Strings   `json:"named_strs"`
	Matrix    [][]Inner `json:"matrix"`

	P         *int              `json:"p"`
	PP        **string          `json:"pp"`
	PStruct   *Inner            `json:"p_struct"`
	PNamed    Ptr               `json:"p_named"`
	PSlice    []*Inner          `json:"p_slice"`
	Map       map[string]Inner  `json:"map"`
	MapPtr    map[Name]*Inner   `json:"map_ptr"`
	MapInt    map[int]string    `json:"map_int"`
	MapLevel  map[Level]int     `json:"map_level"`
	MapNested map[string][]Name `json:"map_nested"`
	MapBig    map[string]int    `json:"map_big"`

	Any      any          `json:"any"`
	AnyList  []any        `json:"any_list"`
	Stringer fmt.Stringer `json:"stringer"`

	Time    time.Time          `json:"time"`
	TimeP   *time.Time         `json:"time_p"`
	TimePP  **time.Time        `json:"time_pp"`
	Checked Checked            `json:"checked"`
	CheckP  *Checked           `json:"check_p"`
	LevelP  *Level             `json:"level_p"`
	Number  json.Number        `json:"number"`
	Level   Level              `json:"level"`
	Anon    struct{ X string } `json:"anon"`
	Zeroish Zeroish            `json:"zeroish"`
	Quoted  Quoted             `json:"quoted"`
	Next    *Sample            `json:"next"`

	OEString string         `json:"oe_string,omitempty"`
	OEBool   bool           `json:"oe_bool,omitempty"`
	OEInt    int            `json:"oe_int,omitempty"`
	OEUint   uint16         `json:"oe_uint,omitempty"`
	OEFloat  float64        `json:"oe_float,omitempty"`
	OESlice  []int          `json:"oe_slice,omitempty"`
	OEMap    map[string]int `json:"oe_map,omitempty"`
	OEArr    [0]int         `json:"oe_arr,omitempty"`
	OEPtr    *Inner         `json:"oe_ptr,omitempty"`
	OEAny    any            `json:"oe_any,omitempty"`
	OEStruct Inner          `json:"oe_struct,omitempty"`
	OETime   time.Time      `json:"oe_time,omitempty"`

	Shadow string
	Left
	Right
	*Outer
	inner
	Inner `json:"tagged_inner"`
}

// Leading starts with fields that may be omitted, so its first comma is
// decided at run time.
type Leading struct {
	A string `json:"a,omitempty"`
	*Outer
	B []int `json:"b,omitempty"`
	C int   `json:"c"`
	D Flag  `json:"d,omitempty"`
}

// Empty has no field encoding/json writes.
type Empty struct {
	x int
	Y int `json:"-"`
}

// Root reaches every type above.
type Root struct {
	Sample  Sample   `json:"sample"`
	Leading Leading  `json:"leading"`
	Empty   Empty    `json:"empty"`
	Empties []Empty  `json:"empties"`
	Opt     *Leading `json:"opt,omitempty"`
}

// Encode is the generated encoder, for the tests.
func Encode(b []byte, r *Root) ([]byte, error) { return appendRoot(b, r) }
