<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="AllStyleCategories" hasScaleBasedVisibilityFlag="0" minScale="1e+08" maxScale="0">
  <!-- CWSC (mm): YlGnBu, 0-1000 mm -->
  <pipe>
    <provider>
      <resampling enabled="false" zoomedInResamplingMethod="nearestNeighbour" zoomedOutResamplingMethod="nearestNeighbour" maxOversampling="2"/>
    </provider>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" nodataColor="" classificationMin="0" classificationMax="1000">
      <rasterTransparency/>
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" minimumValue="0" maximumValue="1000" labelPrecision="2">
          <colorramp type="gradient" name="[source]">
            <Option type="Map">
              <Option type="QString" name="color1" value="255,255,217,255"/>
              <Option type="QString" name="color2" value="8,29,88,255"/>
              <Option type="QString" name="discrete" value="0"/>
              <Option type="QString" name="rampType" value="gradient"/>
              <Option type="QString" name="stops" value="0.1250;237,248,177,255:0.2500;199,233,180,255:0.3750;127,205,187,255:0.5000;65,182,196,255:0.6250;29,145,192,255:0.7500;34,94,168,255:0.8750;37,52,148,255"/>
            </Option>
          </colorramp>
              <item alpha="255" value="0.0" label="0 mm" color="#ffffd9"/>
              <item alpha="255" value="125.0" label="125 mm" color="#edf8b1"/>
              <item alpha="255" value="250.0" label="250 mm" color="#c7e9b4"/>
              <item alpha="255" value="375.0" label="375 mm" color="#7fcdbb"/>
              <item alpha="255" value="500.0" label="500 mm" color="#41b6c4"/>
              <item alpha="255" value="625.0" label="625 mm" color="#1d91c0"/>
              <item alpha="255" value="750.0" label="750 mm" color="#225ea8"/>
              <item alpha="255" value="875.0" label="875 mm" color="#253494"/>
              <item alpha="255" value="1000.0" label="1000 mm" color="#081d58"/>
          <rampLegendSettings minimumLabel="" maximumLabel="" prefix="" suffix=" mm" direction="0" useContinuousLegend="1" orientation="2">
            <numericFormat id="basic">
              <Option type="Map">
                <Option type="QChar" name="decimal_separator" value=""/>
                <Option type="int" name="decimals" value="6"/>
                <Option type="int" name="rounding_type" value="0"/>
                <Option type="bool" name="show_plus" value="false"/>
                <Option type="bool" name="show_thousand_separator" value="true"/>
                <Option type="bool" name="show_trailing_zeros" value="false"/>
                <Option type="QChar" name="thousand_separator" value=""/>
              </Option>
            </numericFormat>
          </rampLegendSettings>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" colorizeOn="0" grayscaleMode="0" colorizeStrength="100" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" invertColors="0"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
