// Package configs holds muckwatch's shipped configuration: the documented default config
// (muckwatch.yaml) and the sample city (cities/shenzhen), embedded so that the binary runs its
// demo anywhere. See README.md beside this file for the city folder format.
package configs

import "embed"

// FS holds muckwatch.yaml and the cities folder.
//
//go:embed muckwatch.yaml cities
var FS embed.FS

// DefaultConfig is the path of the default config inside FS.
const DefaultConfig = "muckwatch.yaml"

// SampleCity is the path of the sample city inside FS.
const SampleCity = "cities/shenzhen"
